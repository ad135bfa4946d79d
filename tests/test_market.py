"""The mock's market: the maintained sort orders against a brute-force sort of the
same deals, snapshots, the reach, determinism, lazy arrivals, filtered paging."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from sim.keepa import DealMarket, MarketSettings, MockKeepa, ServerSettings
from sim.keepa.server import DEAL_REACH

START = 1_770_508_800_000
MINUTE = 60_000
SORTS = (0, 1, 2, 3, 4, -2, -3, -4)
KEYS = {1: lambda d: d.last_update, 2: lambda d: d.buy - d.sell, 3: lambda d: d.rank,
        4: lambda d: (d.buy - d.sell) / d.sell}


def brute(market: DealMarket, sort: int, asins=None) -> list[str]:
    """The list by sorting every deal: ascending (key, ASIN), read backwards for 1
    and the negative sorts."""
    key = KEYS[abs(sort) or 3]
    deals = [market.deals[a] for a in (market.deals if asins is None else asins)]
    ordered = [d.asin for d in sorted(deals, key=lambda d: (key(d), d.asin))]
    return ordered[::-1] if sort == 1 or sort < 0 else ordered


def grown(settings: MarketSettings, built_at_min: int = 10, end_min: int = 40) -> DealMarket:
    """A market whose orders are built after some arrivals and kept up while more come."""
    market = DealMarket(settings, 7, START)
    market.advance(START + built_at_min * MINUTE)
    for sort in SORTS:
        market.snapshot(sort)
    market.advance(START + end_min * MINUTE)
    return market


@pytest.mark.parametrize("sort", SORTS)
def test_each_order_equals_a_brute_force_sort_of_the_same_deals(sort):
    market = grown(MarketSettings(backlog=3000, arrivals_per_hour=3000))
    assert len(market.arrived_ms) > 1000  # arrivals inserted into built orders
    assert market.listing(sort) == brute(market, sort)


def test_a_rough_newest_first_order_is_the_noisy_keys_sorted():
    market = grown(MarketSettings(backlog=2000, arrivals_per_hour=3000, roughness_min=30))
    keys = market.rows.keys(1, 0, market.size).tolist()
    rows = sorted(range(market.size), key=lambda r: (keys[r], r), reverse=True)
    assert market.listing(1) == [f"B0{r:08X}" for r in rows]
    assert market.listing(1) != brute(market, 1)


@pytest.mark.parametrize("sort", [1, 3, -2, 4])
def test_a_snapshot_pages_the_order_of_its_time_without_later_arrivals(sort):
    market = grown(MarketSettings(backlog=2500, arrivals_per_hour=6000), end_min=5)
    snapshot, then = market.snapshot(sort), list(market.deals)
    market.advance(START + 25 * MINUTE)
    assert len(market.deals) > len(then) + 1500
    expected = brute(market, sort, then)
    pages = [snapshot.asins(lo, lo + 150) for lo in range(0, len(then) + 150, 150)]
    assert [a for page in pages for a in page] == expected
    assert snapshot.asins(1234, 1301) == expected[1234:1301]
    assert market.snapshot(sort).asins(0, len(market.deals)) == brute(market, sort)


@pytest.mark.parametrize("sort", [1, 3, -4])
def test_a_filter_is_applied_before_paging(sort):
    market = grown(MarketSettings(backlog=4000, arrivals_per_hour=3000), end_min=5)
    snapshot, then = market.snapshot(sort), list(market.deals)
    market.advance(START + 20 * MINUTE)

    def keep(deal):
        return deal.sell >= 1500 and deal.rating_fresh

    kept = [a for a in brute(market, sort, then) if keep(market.deals[a])]
    assert 300 < len(kept) < len(then) / 2
    assert snapshot.asins(150, 300, keep) == kept[150:300]
    assert snapshot.asins(0, 150, keep) == kept[:150]
    assert snapshot.asins(len(kept) - 10, len(kept) + 150, keep) == kept[-10:]


def test_the_deal_list_reaches_10000_results():
    market = DealMarket(MarketSettings(backlog=12_000, arrivals_per_hour=0), 3, START)
    mock = MockKeepa(ServerSettings(rate=20, latency=False), market, 3, START)

    def page(n):
        status, body = mock.handle("deal", {"key": "k", "selection": json.dumps(
            {"page": n, "sortType": 3})}, START)
        return status, [d["asin"] for d in body.get("deals", {}).get("dr", [])]

    assert page(66) == (200, brute(market, 3)[9900:DEAL_REACH])
    assert page(67)[0] == 405


def test_the_same_seed_makes_the_same_market_and_another_seed_another():
    settings = MarketSettings(backlog=500, arrivals_per_hour=600, roughness_min=5)
    a, b, c = (DealMarket(settings, seed, START) for seed in (4, 4, 5))
    for market in (a, b, c):
        market.advance(START + 3_600_000)
    assert list(a.deals.values()) == list(b.deals.values())
    assert a.arrived_ms == b.arrived_ms and a.listing(1) == b.listing(1)
    assert list(a.deals.values()) != list(c.deals.values())


def test_how_often_the_market_is_looked_at_never_changes_what_it_holds():
    settings = MarketSettings(backlog=300, arrivals_per_hour=5000)
    once, often = DealMarket(settings, 2, START), DealMarket(settings, 2, START)
    often.snapshot(1), often.snapshot(-2)
    rng, now = random.Random(1), START
    while now < START + 2 * 3_600_000:
        now += rng.choice([1, 50, 7_000, 90_000])
        often.advance(now)
    once.advance(now)
    assert len(once.arrived_ms) > 2 * 1024  # several blocks of draws
    assert once.arrived_ms == often.arrived_ms
    assert list(once.deals.values()) == list(often.deals.values())
    assert once.listing(1) == often.listing(1) and once.listing(-2) == often.listing(-2)


def test_each_knob_draws_from_its_own_stream():
    plain = DealMarket(MarketSettings(backlog=400, arrivals_per_hour=600), 1, START)
    rough = DealMarket(MarketSettings(backlog=400, arrivals_per_hour=600, roughness_min=60),
                       1, START)
    bigger = DealMarket(MarketSettings(backlog=900, arrivals_per_hour=600), 1, START)
    for market in (plain, rough, bigger):
        market.advance(START + 3_600_000)
    assert list(plain.deals.values()) == list(rough.deals.values())
    assert plain.listing(1) != rough.listing(1)

    def arrivals(market):  # the arrivals' data, without the ASINs their row numbers make
        return [dataclasses.replace(market.deals[a], asin="") for a in market.arrived_ms]

    assert arrivals(plain) == arrivals(bigger)


def test_deals_is_a_mapping_over_the_deals_arrived_so_far():
    market = DealMarket(MarketSettings(backlog=10, arrivals_per_hour=60), 1, START)
    assert len(market.deals) == 10 and list(market.deals) == [f"B0{i:08X}" for i in range(10)]
    assert "B000000009" in market.deals and "B00000000A" not in market.deals
    assert market.deals.get("B00000000A") is None and market.deals.get("nonsense") is None
    market.advance(START + 3_600_000)
    first = next(iter(market.arrived_ms))
    assert first == "B00000000A" and first in market.deals
    assert market.deals[first].created_ms == market.arrived_ms[first] > START
    assert "b00000000a" not in market.deals
    deal = market.deals["B000000003"]
    assert deal.seller.startswith("A") and deal.offer_pages in (1, 2)
    assert market.deals["B000000003"] is deal
