"""The refresher (issue 11, item 2): spare tokens buy current data for stored deals."""

from __future__ import annotations

import pytest

from collector.live.sqlite import SQLiteStorage
from collector.storage import MemoryStorage, StoredDeal
from sim.engine import simulate
from sim.recorder import stale_p95
from sim.settings import build

REFRESH = ["refresh_period_s=600", "refresh_age_s=1800"]


def summary(refill, hours, *assignments):
    config, scenario = build("fixed", None, assignments, refill, hours, 0)
    return simulate(config, scenario).summary


def test_spare_tokens_buy_current_data_and_no_fewer_deals():
    """At 600 tokens/min the default market runs dry: the refresher spends what is left
    on stored deals, whose data then ages far less, and new deals lose nothing."""
    off, on = summary(600, 12), summary(600, 12, *REFRESH)
    assert off["deals_refreshed"] == 0 and on["deals_refreshed"] > 5 * on["deals_stored"]
    assert on["stale_p95_s"] < 0.3 * off["stale_p95_s"]
    assert on["deals_stored"] >= 0.98 * off["deals_stored"]
    assert on["tokens_consumed"] > 1.3 * off["tokens_consumed"]  # 1.46x measured
    assert on["tasks"]["refresh"]["deals_refreshed"] == on["deals_refreshed"]


def test_the_floor_keeps_the_tokens_for_new_deals():
    run = summary(5, 6, *REFRESH, "refresh_floor=1000000")
    assert run["deals_refreshed"] == 0 and run["tasks"]["refresh"]["runs"] > 0


def test_offers_are_fetched_again_only_when_older_than_their_bound():
    light = summary(600, 6, *REFRESH, "refresh_offers_age_s=1000000")
    heavy = summary(600, 6, *REFRESH, "refresh_offers_age_s=1800")
    per_deal = {name: run["tasks"]["refresh"]["tokens_consumed"] / run["deals_refreshed"]
                for name, run in (("light", light), ("heavy", heavy))}
    assert per_deal["light"] == pytest.approx(1.0)  # stats only: a token an ASIN
    assert per_deal["heavy"] > 4


@pytest.mark.parametrize("make", [lambda tmp: MemoryStorage(),
                                  lambda tmp: SQLiteStorage(tmp / "d.sqlite",
                                                            clock=lambda: CLOCK[0])])
def test_storage_hands_out_the_stalest_deals_first(tmp_path, make):
    storage = make(tmp_path)
    for t, asin in ((0, "A"), (10, "B"), (20, "C")):
        CLOCK[0] = t
        storage.commit([StoredDeal(asin, "backfill", 0)], t)
    CLOCK[0] = 30
    storage.refresh([("A", 5, 6)], 30, offers=False)
    CLOCK[0] = 40
    assert storage.stale(40, 15, 10) == [("B", 30), ("C", 20)]
    assert storage.stale(40, 5, 10) == [("B", 30), ("C", 20), ("A", 40)]  # A's offers: from 0
    assert storage.stale(40, 5, 1) == [("B", 30)]


CLOCK = [0.0]


def test_stale_p95_weights_each_deal_by_how_long_it_was_stored():
    assert stale_p95([(0, "a")], 100) == pytest.approx(95)
    assert stale_p95([(0, "a"), (50, "a")], 100) == pytest.approx(47.5)
    assert stale_p95([(0, "a"), (90, "b")], 100) == pytest.approx(94.5)
    assert stale_p95([], 100) is None
