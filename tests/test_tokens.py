"""The TokenManager's belief and the seed policy's decisions."""

from __future__ import annotations

import math

import pytest

from collector.config import Config
from collector.policies import SeedPolicy
from collector.tokens import RECHARGING, SPENDING, TokenManager
from sim.engine import simulate
from sim.settings import build


def envelope(left, rate=5, refill_in=30_000, **extra):
    return {"tokensLeft": left, "refillRate": rate, "refillIn": refill_in, "timestamp": 0,
            "tokenFlowReduction": 0, **extra}


def manager(**overrides) -> TokenManager:
    return TokenManager(Config.load("fixed", overrides=[f"{k}={v}" for k, v in
                                                             overrides.items()]))


def test_projection_adds_one_lump_a_minute_from_refill_in():
    tm = manager()
    tm.observe(envelope(10, refill_in=30_000), now=100.0)
    assert tm.estimate(129.9) == 10
    assert tm.estimate(130.0) == 15
    assert tm.estimate(189.9) == 15
    assert tm.estimate(190.0) == 20


def test_projection_stops_at_the_cap_and_climbs_from_a_deficit():
    tm = manager()
    tm.observe(envelope(-40, refill_in=1_000), now=0.0)
    assert tm.estimate(1.0 + 60 * 7) == -40 + 8 * 5
    tm.observe(envelope(298), now=0.0)
    assert tm.estimate(3600) == 300


def test_eta_counts_lumps_and_is_infinite_above_the_cap():
    tm = manager()
    tm.observe(envelope(0, refill_in=10_000), now=0.0)
    assert tm.eta(80, 0.0) == pytest.approx(10 + 15 * 60)
    assert math.isinf(tm.eta(301, 0.0))
    assert tm.retry_after(0.0) == pytest.approx(10.1)


def test_a_zeroed_bad_key_envelope_is_not_a_reading():
    tm = manager()
    tm.observe(envelope(120), now=0.0)
    assert not tm.observe({"tokensLeft": 0, "refillRate": 0, "refillIn": 0}, now=1.0)
    assert tm.estimate(1.0) == 120


def test_reservation_lowers_the_estimate_until_its_answer_comes():
    tm = manager()
    tm.observe(envelope(50), now=0.0)
    ticket = tm.reserve("backfill", 8, now=0.0)
    assert tm.estimate(0.0) == 42
    tm.observe(envelope(25), now=2.0, ticket=ticket)
    assert tm.estimate(2.0) == 25 and tm.in_flight == 0


def test_calls_still_in_flight_stay_reserved_when_another_answers():
    tm = manager()
    tm.observe(envelope(100), now=0.0)
    first, second, third = (tm.reserve("backfill", cost, now=0.0) for cost in (10, 20, 30))
    assert tm.estimate(0.0) == 40 and tm.in_flight == 3
    tm.observe(envelope(88), now=1.0, ticket=second)  # the server charged 12 for it
    assert tm.estimate(1.0) == 88 - 10 - 30
    tm.observe(None, now=2.0, ticket=first)  # no answer: it may have been charged
    assert tm.estimate(2.0) == 88 - 10 - 30
    tm.observe(envelope(50), now=3.0)  # a /token reading: charged 38 for the other two
    assert tm.estimate(3.0) == 50 - 30
    tm.observe(envelope(47), now=4.0, ticket=third)
    assert tm.estimate(4.0) == 47 and tm.in_flight == 0


@pytest.mark.parametrize("rate, target", [(1, 80), (5, 80), (9.9, 80), (10, 280), (20, 280),
                                          (60, 280)])
def test_burst_target_follows_the_learned_rate(rate, target):
    tm = manager()
    tm.observe(envelope(0, rate=rate), now=0.0)
    assert tm.target() == target
    assert tm.state(0.0).target == target


def test_seed_policy_recharges_below_the_threshold_until_the_target():
    tm, policy = manager(), SeedPolicy()
    tm.observe(envelope(19, refill_in=5_000), now=0.0)
    wait = policy.decide(tm, "backfill", 8, 0.0)
    assert tm.mode == RECHARGING and wait.reason == "recharge"
    assert wait.seconds == pytest.approx(5 + 12 * 60)  # 19 -> 84 >= 80 after 13 lumps
    tm.observe(envelope(80, refill_in=5_000), now=10.0)
    assert policy.decide(tm, "backfill", 8, 10.0) is None
    assert tm.mode == SPENDING


def test_seed_policy_allows_any_cost_at_the_threshold_but_honours_max_deficit():
    tm, policy = manager(), SeedPolicy()
    tm.observe(envelope(20), now=0.0)
    assert policy.decide(tm, "backfill", 200, 0.0) is None
    bounded = manager(max_deficit=-180)
    bounded.observe(envelope(20), now=0.0)
    assert policy.decide(bounded, "backfill", 201, 0.0).reason == "deficit"


def test_spacing_is_per_task():
    tm, policy = manager(min_interval_s=60), SeedPolicy()
    tm.observe(envelope(200), now=0.0)
    tm.reserve("backfill", 1, now=0.0)
    assert policy.decide(tm, "backfill", 1, 10.0).seconds == pytest.approx(50)
    assert policy.decide(tm, "recent", 1, 10.0) is None


def test_recharge_timeout_releases_the_mode():
    tm, policy = manager(), SeedPolicy()
    tm.observe(envelope(0, refill_in=1_000), now=0.0)
    policy.decide(tm, "backfill", 1, 0.0)
    assert tm.mode == RECHARGING
    tm.observe(envelope(25, refill_in=1_000), now=3600.0)
    assert policy.decide(tm, "backfill", 1, 3600.0) is None


def test_a_server_that_refills_token_by_token_is_projected_so():
    """Keepa's lumps keep one point of the minute (timestamp + refillIn); a server that
    refills continuously reports the time to its next token, and the point moves."""
    lumps, tokens = manager(), manager()
    for t in (0.0, 0.5, 7.25, 30.0):
        stamp = 1_770_508_800_000 + int(t * 1000)
        lumps.observe({"timestamp": stamp, "tokensLeft": 10, "refillRate": 20,
                       "refillIn": 42_000 - int(t * 1000) % 60_000}, t)
        tokens.observe({"timestamp": stamp, "tokensLeft": 10, "refillRate": 20,
                        "refillIn": 3_000}, t)
    assert not lumps.continuous and lumps.eta(30, 30.0) == pytest.approx(12.0)  # the 42 s lump
    assert tokens.continuous and tokens.eta(30, 30.0) == pytest.approx(60.0)  # 20 at 20/min


@pytest.mark.parametrize("preset", ["adaptive", "fixed"])
def test_no_429_storm_when_the_server_refills_continuously(preset):
    """From an empty bucket refilled token by token at 4000/min: before the client told
    the two apart, adaptive met 20,102 429s in 20,352 calls in 6 minutes."""
    config, scenario = build(preset, None, ["server.continuous=true", "server.initial=0"],
                             4000, 0.1, 0)
    summary = simulate(config, scenario).summary
    assert summary["http_429"] <= 0.05 * summary["api_calls"]
