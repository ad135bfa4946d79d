"""Four knobs of the simulated world (issue 13): a priced ``/token``, a market whose
roughness leaves every other draw alone, a reported ``refillRate`` that is never 0
and can spike, and a token utilization that a run ending in deficit cannot push past 1."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.engine import simulate
from sim.keepa import DealMarket, MarketSettings, MockKeepa, ServerSettings
from sim.keepa.columns import ROW
from sim.keepa.errors import SettingsError
from sim.keepa.faults import RATE_FLOOR
from sim.settings import build

START = 1_770_508_800_000
HOUR_MS = 3_600_000
TOKEN = {"key": "k"}


def mock(rate: float = 5, **server) -> MockKeepa:
    return MockKeepa(ServerSettings(rate=rate, latency=False, **server),
                     DealMarket(MarketSettings(backlog=200, arrivals_per_hour=0), 3, START),
                     3, START)


def run(preset: str, refill: float, hours: float, *assignments: str):
    return simulate(*build(preset, None, assignments, refill, hours, 0))


# -- 1. what a GET /token costs ---------------------------------------------------------
def test_token_is_free_by_default_and_charged_like_any_call_when_priced():
    free = mock()
    assert [free.handle("token", TOKEN, START)[1]["tokensConsumed"] for _ in range(3)] == [0] * 3
    assert free.bucket.charged == 0
    priced = mock(token_cost=1, initial=2)
    bodies = [priced.handle("token", TOKEN, START)[1] for _ in range(4)]
    # never refused, even on an empty bucket, and charged every time
    assert [b["tokensLeft"] for b in bodies] == [1, 0, -1, -2]
    assert {b["tokensConsumed"] for b in bodies} == {1}
    b = priced.bucket
    assert b.charged == priced.charged_by_path["token"] == 4
    assert b.initial + b.credited - b.charged == b.balance


def test_a_runs_charges_grow_by_exactly_its_token_calls():
    plain = run("seed-after", 20, 2)
    priced = run("seed-after", 20, 2, "server.token_cost=1")
    assert plain.server.charged_by_path["token"] == 0
    calls = priced.summary["token_calls"]
    assert calls > 50
    by_path = priced.server.charged_by_path
    assert by_path["token"] == calls
    assert priced.summary["tokens_consumed"] == sum(by_path.values())
    assert priced.summary["tokens_consumed"] - calls == sum(
        cost for path, cost in by_path.items() if path != "token")
    assert priced.summary["endpoints"]["token"]["tokens_consumed"] == calls


def test_token_cost_must_not_be_negative():
    with pytest.raises(SettingsError, match="token_cost"):
        ServerSettings(token_cost=-1)


# -- 2. the roughness has a stream of its own -------------------------------------------
def market(roughness: float) -> DealMarket:
    m = DealMarket(MarketSettings(backlog=3000, arrivals_per_hour=60, roughness_min=roughness),
                   11, START)
    m.advance(START + 12 * HOUR_MS)
    return m


def test_roughness_leaves_every_deal_as_it_was():
    smooth, rough = market(0), market(30)
    assert smooth.size == rough.size > 3000 + 500
    assert smooth.arrived_ms == rough.arrived_ms
    a, b = (m.rows.visible(m.size) for m in (smooth, rough))
    for column in ROW.names:
        if column != "noise":
            assert np.array_equal(a[column], b[column]), column
    assert not a["noise"].any() and 0 < np.abs(b["noise"]).max() <= 30
    assert smooth.listing(3) == rough.listing(3)  # only the newest-first order moves
    assert smooth.listing(1) != rough.listing(1)


# -- 3. the reported refillRate: never 0, and spikes ------------------------------------
def reported(m: MockKeepa, n: int = 2000) -> list[float]:
    return [m.handle("token", TOKEN, START + i)[1]["refillRate"] for i in range(n)]


def test_large_noise_never_reports_a_rate_of_zero():
    rates = reported(mock(rate=5, rate_noise=20))
    assert min(rates) == RATE_FLOOR == 1
    assert max(rates) == 25
    assert rates.count(RATE_FLOOR) > 0.3 * len(rates)  # every draw below 1 reports the floor


def test_spikes_report_the_true_rate_in_all_but_their_share():
    rates = reported(mock(rate=5, rate_spike_share=0.1, rate_spike=12))
    assert set(rates) == {5, 12}
    assert 0.87 < rates.count(5) / len(rates) < 0.93


def test_spikes_leave_the_noise_draws_alone():
    noisy = reported(mock(rate=20, rate_noise=3))
    both = reported(mock(rate=20, rate_noise=3, rate_spike_share=0.2, rate_spike=60))
    spiked = [i for i, rate in enumerate(both) if rate == 60]
    assert 300 < len(spiked) < 500
    assert [r for i, r in enumerate(both) if i not in set(spiked)] == \
        [r for i, r in enumerate(noisy) if i not in set(spiked)]


@pytest.mark.parametrize("settings, needle", [
    ({"rate_spike_share": 1.5}, "rate_spike_share"), ({"rate_spike": 0}, "rate_spike")])
def test_bad_spike_settings_are_refused(settings, needle):
    with pytest.raises(SettingsError, match=needle):
        ServerSettings(**settings)


# -- 4. token utilization ---------------------------------------------------------------
def test_a_run_ending_in_deficit_has_utilization_at_most_one():
    s = run("keepa-client", 5, 2).summary
    available = s["initial_balance"] + s["tokens_generated"]
    assert s["final_balance"] < 0 and s["tokens_consumed"] > available
    assert s["token_deficit"] == -s["final_balance"] > 0
    assert s["token_utilization"] <= 1
    assert s["token_utilization"] == pytest.approx(
        (s["tokens_consumed"] - s["token_deficit"]) / available)


def test_a_run_ending_in_credit_has_no_deficit_and_utilization_as_before():
    s = run("seed-after", 5, 2).summary
    assert s["final_balance"] >= 0 and s["token_deficit"] == 0
    assert s["token_utilization"] == s["tokens_consumed"] / (
        s["initial_balance"] + s["tokens_generated"])


def test_the_text_summary_names_the_deficit(sim):
    out = sim("run", "--preset", "keepa-client", "--hours", "2").stdout
    owed = json.loads(sim("run", "--preset", "keepa-client", "--hours", "2", "--json").stdout)
    assert f"{owed['token_deficit']:,.1f} owed at the end" in out
