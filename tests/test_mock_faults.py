"""Faults: off by default, each switched on per run, each from its own seeded stream."""

from __future__ import annotations

import json

import pytest
import simpy

from collector.runtime import Request, TransportError
from sim.keepa import DealMarket, MarketSettings, MockKeepa, ServerSettings
from sim.keepa.errors import SettingsError
from sim.keepa.server import DROPPED
from sim.runtime import SimRuntime

START = 1_770_508_800_000
DEAL = {"key": "k", "selection": json.dumps({"page": 0})}


def mock(**server) -> MockKeepa:
    return MockKeepa(ServerSettings(rate=20, latency=False, **server),
                     DealMarket(MarketSettings(backlog=200, arrivals_per_hour=0), 3, START),
                     3, START)


def statuses(m: MockKeepa, n: int = 400, path="deal", params=DEAL) -> list[int]:
    return [m.handle(path, params, START + i * 1000)[0] for i in range(n)]


def test_no_faults_by_default():
    m = mock()
    assert m.faults is None
    assert set(statuses(m, 100)) == {200}


def test_error_rates_per_status_with_html_bodies():
    m = mock(errors="500:0.1,503:0.2")
    seen = statuses(m, 1000)
    assert 60 < seen.count(500) < 140 and 150 < seen.count(503) < 250
    status, body = mock(errors="500:1").handle("deal", DEAL, START)
    assert status == 500 and body.startswith("<html>") and "Internal Server Error" in body
    assert m.bucket.charged == 5 * seen.count(200)


def test_one_fault_on_leaves_the_other_draws_alone():
    errors_only = statuses(mock(errors="503:0.2"))
    with_more = mock(errors="503:0.2", drop=0.3, slow=0.5)
    assert [s == 503 for s in statuses(with_more)] == [s == 503 for s in errors_only]


def test_outage_windows_answer_503_for_every_path():
    m = mock(outages="60+30,600+60")
    at = {t: m.handle("token", {"key": "k"}, START + t * 1000)[0]
          for t in (59, 60, 89, 90, 599, 600, 659, 660)}
    assert at == {59: 200, 60: 503, 89: 503, 90: 200, 599: 200, 600: 503, 659: 503, 660: 200}


def test_a_dropped_call_is_charged_but_not_answered():
    m = mock(drop=1.0)
    status, body = m.handle("deal", DEAL, START)
    assert status == DROPPED and m.bucket.charged == 5 and body["tokensConsumed"] == 5


def test_the_runtime_turns_faults_into_what_a_client_sees():
    def send(m):
        env = simpy.Environment()
        runtime = SimRuntime(env, m, START, seed=0, key="k")
        out = []

        async def go():
            try:
                out.append(await runtime.send(Request("deal", {"selection": DEAL["selection"]})))
            except TransportError as exc:
                out.append(exc)

        runtime.spawn(go())
        env.run()
        return out[0]

    assert isinstance(send(mock(drop=1.0)), TransportError)
    response = send(mock(errors="503:1"))
    assert response.status == 503 and response.body is None


def test_slow_responses_take_slow_s_longer():
    m = mock(slow=1.0, slow_s=12.5)
    assert m.begin("deal", DEAL, START).latency_ms == 12_500


def test_a_failed_offer_fetch_costs_one_token():
    m = mock(offers_fail=1.0)
    asin = sorted(m.market.deals)[0]
    body = m.handle("product", {"key": "k", "asin": asin, "offers": "20"}, START)[1]
    assert body["tokensConsumed"] == 1


def test_noise_on_the_reported_refill_rate():
    m = mock(rate_noise=3)
    rates = [m.handle("token", {"key": "k"}, START + i)[1]["refillRate"] for i in range(200)]
    assert set(rates) == {17, 18, 19, 20, 21, 22, 23}
    assert m.bucket.rate == 20


def test_the_opt_in_lockout_refuses_even_a_positive_balance():
    m = mock(initial=1, lockout_below=3, lockout_s=600, phase_ms=START % 60_000)
    assert m.handle("deal", DEAL, START)[1]["tokensLeft"] == -4
    status, body = m.handle("deal", DEAL, START + 120_000)
    assert status == 429 and body["tokensLeft"] == 36
    assert m.handle("token", {"key": "k"}, START + 120_000)[0] == 200
    assert m.handle("deal", DEAL, START + 600_000)[0] == 200


@pytest.mark.parametrize("settings, needle", [
    ({"errors": "404:0.1"}, "status must be 5xx"),
    ({"errors": "500:0.7,503:0.7"}, "add up to more than 1"),
    ({"errors": "500"}, "expected STATUS:SHARE"),
    ({"outages": "10+0"}, "length > 0"),
    ({"drop": 1.5}, "server.drop: must be between 0 and 1"),
    ({"lockout_below": -5.0}, "server.lockout_below"),
])
def test_bad_fault_settings_are_one_line_errors(settings, needle):
    with pytest.raises(SettingsError, match=needle):
        ServerSettings(**settings)
