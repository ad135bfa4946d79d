"""The mock's bucket as clients see it: refill timing in the envelope, the cap,
recovery from a deficit, per-token expiry, and properties that hold for any
sequence of requests and times (hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.keepa import DealMarket, MarketSettings, MockKeepa, ServerSettings, TokenBucket

START = 1_770_508_800_000
MINUTE = 60_000
MARKET = MarketSettings(backlog=60, arrivals_per_hour=0)


def mock(rate=5, **server) -> MockKeepa:
    return MockKeepa(ServerSettings(rate=rate, latency=False, **server),
                     DealMarket(MARKET, 1, START), 1, START)


def token(m: MockKeepa, at_ms: int) -> tuple[int, int]:
    body = m.handle("token", {"key": "k"}, START + at_ms)[1]
    return body["tokensLeft"], body["refillIn"]


@pytest.mark.parametrize("at, left, refill_in", [
    (0, 0, 10_000),
    (9_999, 0, 1),
    (10_000, 5, 60_000),
    (40_000, 5, 30_000),
    (69_999, 5, 1),
    (70_000, 10, 60_000),
    (70_000 + 10 * MINUTE, 60, 60_000),
])
def test_refill_in_counts_down_to_the_lump(at, left, refill_in):
    m = mock(initial=0, phase_ms=(START + 10_000) % MINUTE)
    assert token(m, at) == (left, refill_in)


@pytest.mark.parametrize("minutes, left", [(0, 290), (1, 295), (2, 300), (3, 300), (600, 300)])
def test_the_cap_holds(minutes, left):
    m = mock(initial=290, phase_ms=START % MINUTE)
    assert token(m, minutes * MINUTE)[0] == left


@pytest.mark.parametrize("minutes, left, status", [
    (0, -57, 429), (1, -52, 429), (11, -2, 429), (12, 3, 200),
])
def test_a_deficit_climbs_back_by_the_rate_a_minute(minutes, left, status):
    """An offers call on 10 ASINs admitted at balance 3 takes the bucket to -57;
    from there each lump adds 5 and calls are refused until it is positive."""
    m = mock(initial=3, phase_ms=(START + 30_000) % MINUTE)
    asins = ",".join(d.asin for d in sorted(m.market.deals.values(), key=lambda d: d.asin)
                     if d.offer_pages == 1 and not d.offers_fresh)
    first = m.handle("product", {"key": "k", "asin": asins[:109], "offers": "20"}, START)[1]
    assert first["tokensConsumed"] == 60
    at = START + 1000 + minutes * MINUTE
    got, body = m.handle("deal", {"key": "k", "selection": json.dumps({"page": 9})}, at)
    assert got == status
    assert body["tokensLeft"] == left - (5 if status == 200 else 0)


def test_continuous_refill_reports_the_time_to_the_next_token():
    m = mock(rate=6, continuous=True, initial=0)
    assert token(m, 30_000) == (3, 10_000)


def test_expiry_drops_each_lump_an_hour_after_it_came():
    b = TokenBucket(5, start_ms=0, phase_ms=0, initial=0, expiry=True)
    b.advance(60 * MINUTE)
    assert b.balance == 300 and b.lost_to_cap == 0
    b.advance(61 * MINUTE)
    assert b.balance == 300 and b.generated == 305 and b.lost_to_cap == 5
    b.charge(100, 61 * MINUTE)  # the oldest 20 lumps go first ...
    b.advance(81 * MINUTE)  # ... so the next 20 expiries take nothing
    assert b.balance == 300 and b.lost_to_cap == 5
    assert b.initial + b.credited - b.charged == b.balance


def test_expiry_pays_a_deficit_first_and_that_never_expires():
    b = TokenBucket(5, start_ms=0, phase_ms=0, initial=0, expiry=True)
    b.charge(100, 0)
    b.advance(20 * MINUTE)
    assert b.balance == 0
    b.advance(200 * MINUTE)
    assert b.balance == 300 and b.credited == 400 and b.charged == 100


def test_continuous_expiry_holds_less_than_the_cap_between_minutes():
    """Refilled continuously, the tokens of the minute 60 minutes back are gone while
    this minute's are still coming: the balance saws between 59 and 60 x rate."""
    b = TokenBucket(60, start_ms=0, phase_ms=0, continuous=True, expiry=True)
    assert b.initial == 59 * 60
    b.advance(90 * MINUTE + 30_000)
    assert b.balance == pytest.approx(59.5 * 60)
    cap = TokenBucket(60, start_ms=0, phase_ms=0, continuous=True)
    cap.advance(90 * MINUTE + 30_000)
    assert cap.balance == 3600


# -- properties ----------------------------------------------------------------------
KINDS = {
    "token": ("token", {}),
    "deal": ("deal", {"selection": json.dumps({"page": 0, "sortType": 3})}),
    "peek": ("product", {"asin": "<a>", "offers": "20", "rating": "1"}),
    "batch": ("product", {"asin": "<a>,<b>,<c>", "offers": "40"}),
    "plain": ("product", {"asin": "<a>", "buybox": "1"}),
    "seller": ("seller", {"seller": "A0000001,A0000002"}),
    "bad": ("product", {"asin": "<a>", "offers": "3"}),
}

worlds = st.fixed_dictionaries({
    "rate": st.sampled_from([1.0, 5.0, 20.0, 60.0]),
    "continuous": st.booleans(),
    "expiry": st.booleans(),
    "flow_reduction": st.sampled_from([0.0, 0.5]),
    "phase_ms": st.integers(0, MINUTE - 1),
    "share": st.floats(-2.0, 1.0),  # initial balance as a share of the cap
})
steps = st.lists(st.tuples(st.integers(0, 10 * MINUTE), st.sampled_from(sorted(KINDS)),
                           st.integers(0, 3)), max_size=50)


def build(world: dict) -> MockKeepa:
    cap = 60 * (world["rate"] - world["flow_reduction"])
    return mock(rate=world["rate"], continuous=world["continuous"], expiry=world["expiry"],
                flow_reduction=world["flow_reduction"], phase_ms=world["phase_ms"],
                initial=world["share"] * cap)


def play(m: MockKeepa, script, check=lambda m, status, body, charged: None):
    """Send the script; each call stays in flight for its last number of steps."""
    asins = sorted(m.market.deals)
    now, in_flight = START, []
    for i, (wait, kind, hold) in enumerate(script):
        now += wait
        path, params = KINDS[kind]
        params = {k: v.replace("<a>", asins[i % 60]).replace("<b>", asins[(i + 7) % 60])
                  .replace("<c>", asins[(i + 13) % 60]) for k, v in params.items()}
        in_flight.append((i + hold, m.begin(path, {"key": "k", **params}, now)))
        for due, pending in [p for p in in_flight if p[0] <= i]:
            in_flight.remove((due, pending))
            charged = m.bucket.charged
            status, body = m.finish(pending, now)
            check(m, status, body, m.bucket.charged - charged)
    for _, pending in in_flight:
        charged = m.bucket.charged
        check(m, *m.finish(pending, now), m.bucket.charged - charged)


@settings(max_examples=150, deadline=None)
@given(worlds, steps)
def test_books_balance_429s_are_free_and_the_cap_holds(world, script):
    m = build(world)
    b = m.bucket

    def check(m, status, body, charged):
        assert b.initial + b.credited - b.charged == pytest.approx(b.balance, abs=1e-6)
        assert b.balance <= b.cap + 1e-6
        assert b.generated >= b.credited - 1e-6
        if status == 429:
            assert charged == 0 and body["tokensConsumed"] == 0
        else:
            assert charged == body["tokensConsumed"]

    play(m, script, check)
    assert m.bucket.charged == sum(m.charged_by_path.values())


@settings(max_examples=60, deadline=None)
@given(worlds, steps)
def test_lumps_with_expiry_spend_like_the_cap(world, script):
    """A finding, not a design choice: when each lump's tokens live 60 minutes and
    the oldest are spent first, the balance is always the one the cap gives, so the
    two readings of "unused tokens expire after one hour" agree for lump refills."""
    world = {**world, "continuous": False}
    capped, expiring = build({**world, "expiry": False}), build({**world, "expiry": True})
    play(capped, script)
    play(expiring, script)
    assert expiring.bucket.balance == pytest.approx(capped.bucket.balance, abs=1e-6)
    assert expiring.bucket.charged == capped.bucket.charged
