"""Malformed answers (issue 14, item 3): truncated JSON, a proxy's HTML page, garbled or
missing envelope fields, a zeroed 400, absurd balances, a zero rate, an endless body.

In each case the client stays up, says so in one line (an observer event, which the
live collector writes as a warning), keeps its belief sane (a garbled reading is not
adopted) and, when the answer is unusable, backs off as for a 5xx (bounded retries,
the configured backoff), never in a hot loop. The client is driven by a scripted
runtime on a virtual clock; the HTTP transport by `httpx.MockTransport`.
"""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from collector.client import ApiError, KeepaClient
from collector.config import Config
from collector.events import Observer
from collector.live.http import MAX_BODY, HttpTransport
from collector.live.main import LiveOptions, run_live
from collector.live.redact import Redactor
from collector.live.sqlite import SQLiteStorage
from collector.live.stats import LiveStats
from collector.runtime import Request, Response, TransportError
from collector.tokens import SANE_FACTOR

RATE = 20
GOOD = {"tokensLeft": 500, "refillRate": RATE, "refillIn": 30_000, "tokensConsumed": 5,
        "timestamp": 0}
KEY = "Qz7xKr2vW9pL4mJt"


async def _now() -> None:
    """A sleep on the virtual clock: it has passed as soon as it is awaited."""


class Stop(Exception):
    """The script has run to its end."""


class Scripted:
    """A runtime whose clock moves only by sleeps and whose answers come from a script;
    the last answer repeats, up to `limit` sends or `until` seconds."""

    def __init__(self, *answers, limit: int = 1000, until: float = float("inf")):
        self.answers = list(answers)
        self.t = 0.0
        self.sent: list[float] = []  # when each call went out
        self.paths: list[str] = []
        self.sleeps: list[float] = []
        self.limit, self.until = limit, until
        self.rng = random.Random(0)

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float):
        self.t += max(0.0, seconds)
        self.sleeps.append(seconds)
        return _now()

    async def send(self, request: Request) -> Response:
        if len(self.sent) >= self.limit or self.t > self.until:
            raise Stop
        self.sent.append(self.t)
        self.paths.append(request.path)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Lines(Observer):
    """The events the client reports, as the live collector would print them."""

    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def on_task(self, t, task, event, detail=""):
        self.lines.append((event, detail))


def client(runtime, *overrides):
    config = Config.load("fixed", overrides=[
        f"refill_rate={RATE}", "min_interval_s=0", "initial_estimate=1000", "backoff=cumulative",
        "backoff_base_s=1", "backoff_cap_s=60", "max_retries=3", *overrides])
    lines = Lines()
    return KeepaClient(runtime, config, lines), lines


def page(**envelope):
    """A /deal answer with one deal and the given envelope (None: a field left out)."""
    body = {**GOOD, **envelope, "deals": {"dr": [{"asin": "B1"}]}}
    return Response(200, {k: v for k, v in body.items() if v is not None})


def sane(keepa: KeepaClient) -> bool:
    tokens = keepa.tokens
    bound = SANE_FACTOR * tokens.cap
    return -bound <= tokens.estimate(keepa.runtime.now()) <= tokens.cap


def deals(keepa):
    return asyncio.run(keepa.deals("backfill", 0, 3, 5))


UNUSABLE = {
    "truncated JSON": Response(200, None),
    "a proxy's 502 page": Response(502, None),
    "no answer": TransportError("ReadTimeout"),
}


@pytest.mark.parametrize("answer", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_an_unusable_answer_backs_off_as_a_5xx_then_gives_up(answer):
    runtime = Scripted(answer)
    keepa, lines = client(runtime)
    with pytest.raises(ApiError) as failed:
        deals(keepa)
    assert not failed.value.fatal and "gave up after 4 failures" in str(failed.value)
    assert len(runtime.sent) == 4  # the first try and max_retries = 3 more
    assert runtime.sleeps == [1.0, 3.0, 7.0]  # cumulative backoff: base x (2^n - 1)
    retries = [detail for event, detail in lines.lines if event == "retry"]
    assert len(retries) == 3 and all("retrying in" in line for line in retries)
    # every try's reservation stays subtracted (it may have been charged); refill accrues
    assert keepa.tokens.estimate(runtime.t) == pytest.approx(1000 - 5 * 4 + RATE * 11 / 60)
    assert sane(keepa)


def test_an_unusable_answer_then_a_good_one_returns_the_good_one():
    runtime = Scripted(Response(200, None), page())
    keepa, lines = client(runtime)
    assert deals(keepa) == [{"asin": "B1"}]
    assert [event for event, _ in lines.lines] == ["retry"]
    assert "not a JSON object" in lines.lines[0][1]
    assert keepa.tokens.estimate(runtime.t) == 500  # the good reading


GARBLED = {
    "tokensLeft 'abc'": {"tokensLeft": "abc"},
    "refillRate null": {"refillRate": None},
    "refillRate 0": {"refillRate": 0},
    "refillRate negative": {"refillRate": -5},
    "refillIn 'soon'": {"refillIn": "soon"},
    "refillIn a day": {"refillIn": 86_400_000},
    "tokensLeft 1e12": {"tokensLeft": 1e12},
    "tokensLeft -1e12": {"tokensLeft": -1e12},
    "tokensLeft NaN": {"tokensLeft": float("nan")},
    "tokensLeft true": {"tokensLeft": True},
    "tokensConsumed 'x' and tokensLeft absent": {"tokensConsumed": "x", "tokensLeft": None},
}


@pytest.mark.parametrize("fields", GARBLED.values(), ids=GARBLED.keys())
def test_a_garbled_envelope_is_not_adopted_and_said_once(fields):
    """The deals came, so they are used (sending again would pay twice); the reading is
    not, so the belief is the last one less what was reserved since."""
    runtime = Scripted(page(), page(**fields))
    keepa, lines = client(runtime)
    deals(keepa)
    before = keepa.tokens.estimate(runtime.t)
    stats = LiveStats()  # the live observer adds up what envelopes report: it must not fail
    keepa.observer = stats
    assert deals(keepa) == [{"asin": "B1"}]
    assert keepa.tokens.estimate(runtime.t) == before - 5
    assert keepa.tokens.rate == RATE and sane(keepa)
    assert stats.counts.api_calls == 1 and stats.counts.failures == 0


def test_each_garbled_envelope_is_one_warning_line():
    said = []
    runtime = Scripted(*(page(**fields) for fields in GARBLED.values()))
    keepa, _ = client(runtime)
    keepa.observer = LiveStats(lambda kind, message: said.append((kind, message)))
    for _ in GARBLED:
        deals(keepa)
    assert len(said) == len(GARBLED) and {kind for kind, _ in said} == {"warning"}
    assert all("reading ignored" in message for _, message in said)
    assert "tokensLeft 'abc' is not a number" in said[0][1]


def test_refill_in_absent_is_a_reading_without_a_phase():
    runtime = Scripted(page(refillIn=None))
    keepa, lines = client(runtime)
    deals(keepa)
    assert lines.lines == [] and keepa.tokens.estimate(runtime.t) == 500
    assert keepa.tokens.refill_in(runtime.t) == 60.0  # no phase known


def test_a_zeroed_400_is_fatal_and_no_reading():
    zeroed = Response(400, {"tokensLeft": 0, "refillRate": 0, "refillIn": 0, "tokensConsumed": 0,
                            "error": {"type": "invalidKey", "message": "bad key"}})
    runtime = Scripted(zeroed)
    keepa, lines = client(runtime)
    with pytest.raises(ApiError) as failed:
        deals(keepa)
    assert failed.value.fatal and len(runtime.sent) == 1 and lines.lines == []
    assert keepa.tokens.rate == RATE and keepa.tokens.estimate(runtime.t) == 1000 - 5


def test_a_garbled_token_read_keeps_the_belief():
    runtime = Scripted(Response(200, {"tokensLeft": -1e12, "refillRate": RATE}))
    keepa, lines = client(runtime)
    asyncio.run(keepa.sync("recent"))
    assert keepa.tokens.estimate(0) == 1000
    assert lines.lines == [("malformed", f"/token: tokensLeft -1000000000000.0 is beyond "
                                         f"+-{SANE_FACTOR * 60 * RATE:,}; reading ignored")]


HOT = {  # answer, most /deal calls in an hour
    "HTML 200s for ever": (Response(200, None), 3600 // 60 + 10),
    "429s with a garbled envelope": (Response(429, {"tokensLeft": "abc", "refillRate": None}),
                                     3600 // 60 + 10),
    "200s with an absurd balance": (page(tokensLeft=1e12), (1000 + RATE * 60) // 5 + 1),
}


@pytest.mark.parametrize("answer, most", HOT.values(), ids=HOT.keys())
def test_no_hot_loop_in_an_hour_of_bad_answers(answer, most):
    """An hour of nothing but bad answers, retried for ever: an unusable one waits the
    backoff (capped at 60 s) before each retry; a usable one with a reading that is not
    adopted is paced by the belief (1000 tokens, then 20 a minute, 5 reserved a call).
    The belief never leaves its bounds."""
    runtime = Scripted(answer, until=3600)
    keepa, lines = client(runtime, "max_retries=")

    async def forever():
        while True:
            await keepa.deals("backfill", 0, 3, 5)

    with pytest.raises(Stop):
        asyncio.run(forever())
    assert runtime.paths.count("deal") <= most
    assert len(lines.lines) == len(runtime.sent)  # one line a bad answer, no more
    assert sane(keepa)


# -- the live transport: what httpx reads ---------------------------------------------------
def transport(handler, **kw) -> HttpTransport:
    return HttpTransport("http://keepa.test", KEY, Redactor(KEY),
                         transport=httpx.MockTransport(handler), **kw)


def answer(http: HttpTransport, path="deal"):
    async def go():
        try:
            return await http.send(Request(path))
        finally:
            await http.close()
    return asyncio.run(go())


def test_truncated_json_and_an_html_page_have_no_body():
    truncated = transport(lambda request: httpx.Response(200, content=b'{"tokensLeft": 5, "de'))
    assert answer(truncated) == Response(200, None)
    html = transport(lambda request: httpx.Response(
        502, content=b"<html><body>502 Bad Gateway</body></html>",
        headers={"Content-Type": "text/html"}))
    assert answer(html) == Response(502, None)


def test_a_body_over_the_cap_is_a_failed_call():
    """Said up front (Content-Length) or streamed without a length, a body longer than
    the cap is not read on; one at the cap still is."""
    big = transport(lambda request: httpx.Response(200, content=b" " * (MAX_BODY + 1)))
    with pytest.raises(TransportError, match="body over 52,428,800 bytes"):
        answer(big)

    async def endless():
        for _ in range(100):
            yield b"x" * 1000

    streamed = transport(lambda request: httpx.Response(200, content=endless()), max_body=50_000)
    with pytest.raises(TransportError, match="body over 50,000 bytes"):
        answer(streamed)
    at_cap = transport(lambda request: httpx.Response(200, json={"tokensLeft": 5}),
                       max_body=len(b'{"tokensLeft":5}'))
    assert answer(at_cap) == Response(200, {"tokensLeft": 5})


class Corrupting:
    """The in-process mock, with every third answer's envelope garbled in turn."""

    def __init__(self, inner):
        self.inner, self.n = inner, 0
        self.faults = [{"tokensLeft": "abc"}, {"refillRate": None}, {"tokensLeft": 1e12}, None]

    async def send(self, request):
        response = await self.inner.send(request)
        self.n += 1
        if self.n % 3 or response.status != 200:
            return response
        fault = self.faults[(self.n // 3) % len(self.faults)]
        if fault is None:
            return Response(200, None)  # truncated
        return Response(200, {**response.body, **fault})


def test_a_live_run_among_garbled_answers_stays_up_and_sane(tmp_path, capsys):
    from tests.test_live import FAST, mock
    from sim.transport import MockTransport

    config = Config.load("seed-after", overrides=[*FAST, "backoff_base_s=0.05"])
    options = LiveOptions(config, "http://127.0.0.1:9", str(tmp_path / "deals.sqlite"),
                          status_every=1.0, duration=3.0)
    assert run_live(options, KEY, Corrupting(MockTransport(mock(), KEY))) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if " warning " in line]
    assert any("reading ignored" in line for line in warnings)
    assert any("not a JSON object; retrying in" in line for line in warnings)
    assert "Traceback" not in err and " error " not in err
    store = SQLiteStorage(tmp_path / "deals.sqlite", readonly=True)
    belief = store.last_run().belief
    assert store.count() > 0
    assert -SANE_FACTOR * 60 * belief["rate"] <= belief["balance"] <= 60 * belief["rate"]
    assert belief["rate"] == 600  # the mock's, never a garbled one

