"""Malformed answers (issue 14, item 3): truncated JSON, a proxy's HTML page, garbled or
missing envelope fields, a zeroed 400, absurd balances, a zero rate, an endless body, a
payload not of the shape Keepa's structs give (`collector.answers`).

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

from collector import answers
from collector.client import ApiError, KeepaClient, product_params
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
        self.calls = []  # the CallRecords

    def on_task(self, t, task, event, detail=""):
        self.lines.append((event, detail))

    def on_call(self, record):
        self.calls.append(record)


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
    "200s with a malformed payload": (Response(200, {**GOOD, "deals": "x"}), 3600 // 60 + 10),
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


# -- payloads: a sound envelope around data not of Keepa's shape ------------------------------
DEAL = {"asin": "B1", "lastUpdate": 7_000_000}
STATS = {"current": [-1, 1000, 5], "avg90": [-1, 3000, 5], "buyBoxSellerId": "A0000001"}
PRODUCT = {"asin": "B1", "title": "Product B1", "stats": STATS}
SELLERS = {"A0000001": {"sellerId": "A0000001", "sellerName": "Seller A0000001"}}
GOOD_PAYLOAD = {"deal": {"deals": {"dr": [DEAL]}}, "product": {"products": [PRODUCT]},
                "seller": {"sellers": SELLERS}}


def dr(*items):
    return {"deals": {"dr": list(items)}}


def product(**fields):
    """A /product payload of one product, with `fields` replaced."""
    return {"products": [{**PRODUCT, **fields}]}


def stats(**fields):
    """A /product payload of one product, with `fields` of its stats replaced."""
    return product(stats={**STATS, **fields})


def ask(keepa: KeepaClient, path: str):
    """The endpoint method's answer, as the tasks call it."""
    if path == "deal":
        go = keepa.deals("backfill", 0, 3, 5)
    elif path == "product":
        go = keepa.products("backfill", ["B1"], 1, offers=0, stats_days=90, history=False,
                            rating=False)
    else:
        go = keepa.sellers("backfill", ["A0000001"])
    return asyncio.run(go)


def returned(path: str, payload: dict):
    """What the endpoint method returns for a well-formed `payload`."""
    if path == "deal":
        return (payload.get("deals") or {}).get("dr") or []
    return payload.get(path + "s") or ({} if path == "seller" else [])


MALFORMED = {  # endpoint, payload, what the line says of it
    "deals a string": ("deal", {"deals": "x"}, "deals is 'x', not an object"),
    "deals a list": ("deal", {"deals": [DEAL]}, "deals is [{'asin': 'B1', 'lastUpdate': 7000000}]"
                                                ", not an object"),
    "deals.dr a string": ("deal", {"deals": {"dr": "x"}}, "deals.dr is 'x', not a list"),
    "deals.dr an object": ("deal", {"deals": {"dr": {"0": DEAL}}},  # a long value: cut short
                           "deals.dr is {'0': {'asin': 'B1', 'lastUpdate': 70..., not a list"),
    "a deal not an object": ("deal", dr(DEAL, "B2"), "deals.dr[1] is 'B2', not an object"),
    "a deal without asin": ("deal", dr(DEAL, {"lastUpdate": 1}), "deals.dr[1] has no asin"),
    "a deal's asin empty": ("deal", dr({"asin": ""}), "deals.dr[0].asin is '', not a non-empty "
                                                       "string"),
    "a deal's asin null": ("deal", dr({"asin": None}), "deals.dr[0].asin is None, not a "
                                                        "non-empty string"),
    "a deal's asin a number": ("deal", dr({"asin": 5}), "deals.dr[0].asin is 5, not a non-empty "
                                                         "string"),
    "lastUpdate 'x'": ("deal", dr(DEAL, DEAL, DEAL, {"asin": "B4", "lastUpdate": "x"}),
                       "deals.dr[3].lastUpdate is 'x', not an integer"),
    "lastUpdate null": ("deal", dr({"asin": "B1", "lastUpdate": None}),
                        "deals.dr[0].lastUpdate is None, not an integer"),
    "lastUpdate true": ("deal", dr({"asin": "B1", "lastUpdate": True}),
                        "deals.dr[0].lastUpdate is True, not an integer"),
    "lastUpdate a float": ("deal", dr({"asin": "B1", "lastUpdate": 7e6}),
                           "deals.dr[0].lastUpdate is 7000000.0, not an integer"),
    "lastUpdate NaN": ("deal", dr({"asin": "B1", "lastUpdate": float("nan")}),
                       "deals.dr[0].lastUpdate is nan, not an integer"),
    "lastUpdate beyond 32 bits": ("deal", dr({"asin": "B1", "lastUpdate": 2 ** 31}),
                                  "deals.dr[0].lastUpdate is 2147483648, not a 32-bit integer"),
    "products a number": ("product", {"products": 5}, "products is 5, not a list"),
    "products an object": ("product", {"products": {"B1": PRODUCT}},
                           "products is {'B1': {'asin': 'B1', 'title': 'Produ..., not a list"),
    "a product not an object": ("product", {"products": [PRODUCT, "B2"]},
                                "products[1] is 'B2', not an object"),
    "a product without asin": ("product", {"products": [{"title": "t"}]},
                               "products[0] has no asin"),
    "a product's asin a list": ("product", product(asin=["B1"]),
                                "products[0].asin is ['B1'], not a non-empty string"),
    "title a dict": ("product", product(title={"en": "t"}),
                     "products[0].title is {'en': 't'}, not a string"),
    "title a number": ("product", product(title=5), "products[0].title is 5, not a string"),
    "stats a list": ("product", product(stats=[STATS]), "products[0].stats is "
                     "[{'current': [-1, 1000, 5], 'avg90': ..., not an object"),
    "stats a string": ("product", product(stats="x"), "products[0].stats is 'x', not an object"),
    "stats.current a string": ("product", stats(current="1000"),
                               "products[0].stats.current is '1000', not a list"),
    "stats.avg90 an object": ("product", stats(avg90={"1": 3000}),
                              "products[0].stats.avg90 is {'1': 3000}, not a list"),
    "the current price a string": ("product", stats(current=[-1, "1000", 5]),
                                   "products[0].stats.current[1] is '1000', not an integer"),
    "the current price a float": ("product", stats(current=[-1, 10.5, 5]),
                                  "products[0].stats.current[1] is 10.5, not an integer"),
    "the avg90 price a string": ("product", stats(avg90=[-1, "3000", 5]),
                                 "products[0].stats.avg90[1] is '3000', not an integer"),
    "the avg90 price null": ("product", stats(avg90=[-1, None, 5]),
                             "products[0].stats.avg90[1] is None, not an integer"),
    "the avg90 price false": ("product", stats(avg90=[-1, False, 5]),
                              "products[0].stats.avg90[1] is False, not an integer"),
    "the avg90 price beyond 32 bits": ("product", stats(avg90=[-1, 10 ** 20, 5]),
                                       "products[0].stats.avg90[1] is 100000000000000000000, "
                                       "not a 32-bit integer"),
    "buyBoxSellerId a number": ("product", stats(buyBoxSellerId=-1),
                                "products[0].stats.buyBoxSellerId is -1, not a string"),
    "buyBoxSellerId a list": ("product", stats(buyBoxSellerId=["A0000001"]),
                              "products[0].stats.buyBoxSellerId is ['A0000001'], not a string"),
    "sellers a list": ("seller", {"sellers": list(SELLERS.values())},
                       "sellers is [{'sellerId': 'A0000001', 'sellerName..., not an object"),
    "sellers a string": ("seller", {"sellers": "A0000001"}, "sellers is 'A0000001', not an object"),
}


@pytest.mark.parametrize("path, payload, said", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_payload_is_retried_then_the_good_answer_returned(path, payload, said):
    """One line naming the field, the backoff, the same request again; the envelope is
    adopted all the same (Keepa charged: its tokens are counted), and the call is
    reported as a failed one, as a 200 that is not JSON is."""
    runtime = Scripted(Response(200, {**GOOD, **payload}),
                       Response(200, {**GOOD, "tokensLeft": 400, **GOOD_PAYLOAD[path]}))
    keepa, lines = client(runtime)
    assert ask(keepa, path) == returned(path, GOOD_PAYLOAD[path])
    assert lines.lines == [("retry", f"/{path}: HTTP 200 with a malformed payload: {said}; "
                                     f"retrying in 1.0 s (failure 1 of 4)")]
    assert runtime.sleeps == [1.0] and runtime.paths == [path, path]
    assert [(r.status, r.consumed, r.tokens_left) for r in lines.calls] == [(0, 5, 500),
                                                                            (200, 5, 400)]
    assert keepa.tokens.estimate(runtime.t) == 400 and sane(keepa)


@pytest.mark.parametrize("path, payload, said", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_payload_for_ever_gives_up_after_max_retries(path, payload, said):
    runtime = Scripted(Response(200, {**GOOD, **payload}))
    keepa, lines = client(runtime)
    with pytest.raises(ApiError) as failed:
        ask(keepa, path)
    assert not failed.value.fatal
    assert str(failed.value) == (f"/{path}: gave up after 4 failures "
                                 f"(HTTP 200 with a malformed payload: {said})")
    assert len(runtime.sent) == 4 and runtime.sleeps == [1.0, 3.0, 7.0]
    assert [event for event, _ in lines.lines] == ["retry"] * 3
    assert all(said in detail for _, detail in lines.lines)
    # each answer's sound envelope was a reading: the belief is the last one's, not
    # 1000 less four reservations as after answers without one
    assert keepa.tokens.estimate(runtime.t) == 500 and keepa.tokens.rate == RATE
    assert sane(keepa)


WELL_FORMED = {  # endpoint, payload: absent or null where Keepa's structs leave null
    "unknown fields in a deal page": ("deal", {
        "deals": {"dr": [{**DEAL, "title": "t", "current": [1, "x"], "someNewField": {"a": 1}},
                         {"asin": "B2", "lastUpdate": -1, "rootCat": 9223372036854775807}],
                  "categoryIds": [1], "newThing": None}, "products": "not read on a /deal"}),
    "no deals": ("deal", {}),
    "deals null": ("deal", {"deals": None}),
    "deals.dr absent": ("deal", {"deals": {"categoryIds": []}}),
    "deals.dr null": ("deal", {"deals": {"dr": None}}),
    "deals.dr empty": ("deal", {"deals": {"dr": []}}),
    "lastUpdate absent (Deal.java's 0)": ("deal", dr({"asin": "B1"})),
    "lastUpdate at 32 bits": ("deal", dr({"asin": "B1", "lastUpdate": 2 ** 31 - 1})),
    "unknown fields in a product": ("product", {"products": [
        {**PRODUCT, "csv": [None, [1, 2]], "offers": [{"x": "y"}], "newField": 1.5,
         "stats": {**STATS, "current": [-1, 1000, "not read", None], "avg": "not read",
                   "avg30": [-1, "x"], "min": [[1, 2]], "buyBoxPrice": -2}},
        {"asin": "B2", "title": None, "stats": None}]}),
    "no products": ("product", {}),
    "products null": ("product", {"products": None}),
    "title absent": ("product", {"products": [{"asin": "B1", "stats": STATS}]}),
    "title null": ("product", product(title=None)),
    "stats absent": ("product", {"products": [{"asin": "B1", "title": "t"}]}),
    "stats empty": ("product", product(stats={})),
    "current and avg90 null": ("product", stats(current=None, avg90=None)),
    "current and avg90 short of NEW": ("product", stats(current=[], avg90=[-1])),
    "buyBoxSellerId null": ("product", stats(buyBoxSellerId=None)),
    "buyBoxSellerId -2": ("product", stats(buyBoxSellerId="-2")),
    "unknown fields in sellers": ("seller", {"sellers": {"A0000001": {"anything": [1]},
                                                         "A0000002": "not read"}}),
    "no sellers": ("seller", {}),
    "sellers null": ("seller", {"sellers": None}),
}


@pytest.mark.parametrize("path, payload", WELL_FORMED.values(), ids=WELL_FORMED.keys())
def test_a_well_formed_payload_is_returned_whole(path, payload):
    """Fields the collector does not read, known to Keepa or not, pass; a container Keepa
    leaves null is empty; nothing is dropped."""
    runtime = Scripted(Response(200, {**GOOD, **payload}))
    keepa, lines = client(runtime)
    got = ask(keepa, path)
    assert got == returned(path, payload)
    assert lines.lines == [] and len(runtime.sent) == 1


def test_the_mocks_answers_are_well_formed():
    """What the mock renders for every call the collector makes passes the readers, so
    a simulated run never retries one (its summaries are those of before the readers)."""
    from tests.test_live import mock
    from sim.transport import MockTransport

    server = MockTransport(mock(backlog=200), KEY)

    async def go(path, **params):
        return (await server.send(Request(path, {"domain": "1", **params}))).body

    selection = '{"page": 0, "domainId": 1, "priceTypes": [1], "sortType": 3, "dateRange": 0}'
    page = answers.deal_page(asyncio.run(go("deal", selection=selection)))
    assert len(page) == 150
    asins = [deal["asin"] for deal in page[:99]] + ["B0NOTKNOWN"]  # one Keepa does not know
    for query in ({"offers": 0, "stats_days": 90, "history": False, "rating": False},
                  {"offers": 20, "stats_days": 90, "history": True, "rating": True, "days": 90}):
        found = answers.products(asyncio.run(go("product", **product_params(asins, **query))))
        assert len(found) == 99
    sellers = {p["stats"]["buyBoxSellerId"] for p in found} | {"A9999999"}
    assert answers.sellers(asyncio.run(go("seller", seller=",".join(sorted(sellers)))))


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


def spoilt(body: dict, turn: int) -> dict:
    """`body` with its payload's first item not of Keepa's shape, a way each `turn` (a
    copy: the mock keeps the objects it renders)."""
    if body.get("deals"):
        first, *rest = body["deals"]["dr"] or [{"asin": "B1"}]
        first = ({**first, "lastUpdate": "x"}, {k: v for k, v in first.items() if k != "asin"})
        return {**body, "deals": {**body["deals"], "dr": [first[turn % 2], *rest]}}
    if body.get("products"):
        first, *rest = body["products"]
        first = ({**first, "stats": [first.get("stats")]}, {**first, "title": {"en": "t"}},
                 {**first, "stats": {**(first.get("stats") or {}), "current": "1000"}})
        return {**body, "products": [first[turn % 3], *rest]}
    if body.get("sellers"):
        return {**body, "sellers": list(body["sellers"])}
    return body


class Corrupting:
    """The in-process mock, with every third answer's envelope, body or payload garbled in
    turn, and every product's title null (Keepa's null: no title)."""

    def __init__(self, inner):
        self.inner, self.n = inner, 0
        self.faults = [{"tokensLeft": "abc"}, {"refillRate": None}, {"tokensLeft": 1e12}, None,
                       spoilt]

    async def send(self, request):
        response = await self.inner.send(request)
        self.n += 1
        body = response.body
        if body and body.get("products"):
            body = {**body, "products": [{**p, "title": None} for p in body["products"]]}
        if self.n % 3 or response.status != 200:
            return Response(response.status, body)
        turn, step = divmod(self.n // 3, len(self.faults))
        fault = self.faults[step]
        if fault is None:
            return Response(200, None)  # truncated
        if fault is spoilt:
            return Response(200, spoilt(body, turn))
        return Response(200, {**body, **fault})


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
    assert any("malformed payload: " in line and "; retrying in" in line for line in warnings)
    assert "Traceback" not in err and " error " not in err
    store = SQLiteStorage(tmp_path / "deals.sqlite", readonly=True)
    belief = store.last_run().belief
    assert store.count() > 0
    assert {title for (title,) in store.db.execute("SELECT title FROM deals")} == {""}
    assert -SANE_FACTOR * 60 * belief["rate"] <= belief["balance"] <= 60 * belief["rate"]
    assert belief["rate"] == 600  # the mock's, never a garbled one

