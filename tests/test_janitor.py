"""The janitor and the peek batch set apart (issue 13, items 4 and 5)."""

from __future__ import annotations

from collections import Counter

import pytest

from collector.config import Config
from collector.live.sqlite import SQLiteStorage
from collector.storage import MemoryStorage, StoredDeal
from sim.engine import simulate
from sim.recorder import stale_p95
from sim.settings import build

HOUR = 3600.0
JANITOR = ["janitor_ttl_s=3600", "janitor_period_s=600"]


def run(preset, refill, hours, *assignments):
    config, scenario = build(preset, None, assignments, refill, hours, 0)
    return simulate(config, scenario)


def test_the_janitor_shrinks_the_store_when_ingestion_is_slower_than_its_ttl():
    """At 5 tokens/min a deal is stored every few minutes and few are seen again: with a
    TTL of an hour most go, without a token spent; the timeseries shows the count."""
    off, on = run("fixed", 5, 24), run("fixed", 5, 24, *JANITOR)
    assert "deals_deleted" not in off.summary and "janitor" not in off.summary["tasks"]
    assert off.collector.storage.count() == off.summary["deals_stored"]  # 284 measured
    kept = on.summary["deals_stored_at_end"]
    assert kept == on.collector.storage.count() < 0.2 * off.collector.storage.count()  # 16
    assert on.summary["deals_deleted"] > 0.8 * on.summary["deals_stored"]  # 271 of 284
    assert on.summary["tasks"]["janitor"]["runs"] == 24 * 6
    assert on.summary["tasks"]["janitor"]["api_calls"] == 0
    assert on.summary["tokens_consumed"] == pytest.approx(off.summary["tokens_consumed"], 0.05)
    counts = [s.stored for s in on.recorder.samples]
    assert len(counts) == 24 * 60 and max(counts) < 0.2 * off.summary["deals_stored"]
    assert [s.stored for s in off.recorder.samples][-1] == off.collector.storage.count()


def test_a_deleted_deal_listed_again_is_stored_again_and_counted_once():
    """The backfiller meets a few deleted deals again further down the list: each is
    examined and stored again (deals_stored_again), deals_stored counts it once."""
    summary = run("fixed", 5, 24, *JANITOR).summary
    assert summary["deals_stored_again"] > 0  # 3 measured
    stores = summary["tasks"]["backfill"]["deals_stored"] + summary["tasks"]["recent"][
        "deals_stored"]
    assert stores == summary["deals_stored"] + summary["deals_stored_again"]
    assert summary["deals_stored_at_end"] == stores - summary["deals_deleted"]


def test_deals_in_view_of_the_recent_pages_survive():
    """At 20 tokens/min the recent run reads page 0 (newest first) every 15 minutes: the
    deals stored long before the end but still among the 150 newest stay; most of the
    other deals stored that long ago go."""
    ttl = 3600.0
    result = run("fixed", 20, 12, *JANITOR)
    end = 12 * HOUR
    arrived = sorted(result.server.market.arrived_ms, key=result.server.market.arrived_ms.get)
    newer = {asin: len(arrived) - 1 - i for i, asin in enumerate(arrived)}
    first: dict[str, float] = {}
    for t, asin in result.recorder.stored:
        first.setdefault(asin, t)
    old = [asin for asin, t in first.items() if t < end - ttl - 600]
    in_view = [asin for asin in old if newer.get(asin, len(newer)) < 140]
    stored = result.collector.storage.deals
    assert len(in_view) >= 10 and all(asin in stored for asin in in_view)
    gone = [asin for asin in old if asin not in in_view and asin not in stored]
    assert len(gone) > 0.8 * (len(old) - len(in_view))


def test_refreshed_deals_survive():
    """With the refresher fetching every deal older than 30 minutes, nothing reaches the
    janitor's hour; without it, at 600 tokens/min the market runs dry and most go."""
    refresh = ["refresh_period_s=600", "refresh_age_s=1800"]
    bare = run("fixed", 600, 12, *JANITOR).summary
    kept = run("fixed", 600, 12, *JANITOR, *refresh).summary
    assert bare["deals_deleted"] > 0.9 * bare["deals_stored"]  # 1576 of 1632
    assert kept["deals_deleted"] == 0 and kept["deals_stored_at_end"] == kept["deals_stored"]
    assert kept["stale_p95_s"] < 1800 + 600 + 60


@pytest.mark.parametrize("make", [lambda tmp: MemoryStorage(),
                                  lambda tmp: SQLiteStorage(tmp / "d.sqlite",
                                                            clock=lambda: CLOCK[0])])
def test_storage_expires_the_deals_not_seen_within_the_ttl(tmp_path, make):
    storage = make(tmp_path)
    for t, asin in ((0, "A"), (10, "B"), (20, "C")):
        CLOCK[0] = t
        storage.commit([StoredDeal(asin, "backfill", 0)], t)
    CLOCK[0] = 30
    storage.seen(["A", "X"], 30)  # X is not stored: seeing it stores nothing
    storage.refresh([("B", 5, 6)], 30, offers=False)
    CLOCK[0] = 45
    assert storage.expire(45, 20) == ["C"]
    assert storage.known(["A", "B", "C", "X"]) == {"A", "B"} and storage.count() == 2
    storage.refresh([("C", 5, 6)], 45, offers=False)  # deleted while it was asked: ignored
    assert storage.count() == 2 and [a for a, _ in storage.stale(45, 0, 10)] == ["A", "B"]
    storage.commit([StoredDeal("C", "recent", 0)], 45)  # listed again: stored again
    CLOCK[0] = 60
    assert sorted(storage.expire(60, 20)) == ["A", "B"] and storage.known(["C"]) == {"C"}


CLOCK = [0.0]


def test_stale_p95_ends_a_deals_age_at_its_deletion():
    assert stale_p95([(0, "a")], 100, [(50, "a")]) == pytest.approx(47.5)
    assert stale_p95([(0, "a"), (60, "a")], 100, [(50, "a")]) == pytest.approx(
        stale_p95([(0, "a"), (60, "b")], 100, [(50, "a")]))


def test_peek_batch_size_peeks_fifty_and_full_fetches_in_fives():
    """As the Smart Ingestor: chunks of 50 peeked in one call, survivors fetched 5 a call.
    Without it the same chunks are peeked in fives."""
    def product_calls(*assignments):
        result = run("fixed", 20, 6, "chunk_size=50", "batch_size=5", *assignments)
        per_asin = result.collector.config.peek_reserved_per_asin
        calls = Counter()
        for call in result.recorder.calls:
            if call.task == "backfill" and call.path == "product":
                kind = "peek" if call.reserved == call.items * per_asin else "full"
                calls[kind, call.items] += 1
        return calls

    today, apart = product_calls(), product_calls("peek_batch_size=50")
    assert max(items for kind, items in today if kind == "peek") == 5
    peeks = Counter({items: n for (kind, items), n in apart.items() if kind == "peek"})
    assert max(peeks) == 50 and peeks[50] >= sum(peeks.values()) / 2  # 11 of 17 measured
    fulls = Counter({items: n for (kind, items), n in apart.items() if kind == "full"})
    assert max(fulls) == 5 and fulls[5] > sum(fulls.values()) / 2  # 47 of 56


def test_the_knobs_default_to_today():
    config = Config()
    assert config.janitor_ttl_s is None and config.peek_batch_size is None
    assert config.peek_batch_at(5) == config.batch_size and config.full_batch() is None
    assert Config(peek_batch_size=50, batch_size=5).full_batch() == 5
    assert Config(peek_batch_size=50, commit_batch_size=10).full_batch() == 10
