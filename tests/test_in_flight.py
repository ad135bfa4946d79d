"""Calls in flight: the limit holds, reservations add up, and the backfiller's cursor
moves like a consumer's committed offset, so crashes with chunks in flight lose and
repeat nothing (issue 11, items 1 and Done-when 3, in the simulator)."""

from __future__ import annotations

import random

import simpy

from collector.app import Collector
from collector.backfill import backfill
from collector.config import Config
from collector.keepa import DEAL_PAGE_SIZE, SORT_SALES_RANK
from collector.events import Observer
from collector.pipeline import profitable
from collector.storage import MemoryStorage
from sim.keepa import DealMarket, MarketSettings, MockKeepa, ServerSettings
from sim.runtime import SimRuntime

START = 1_770_508_800_000
FAST = ["refill_rate=600", "chunk_overhead_s=0", "commit_overhead_s=0", "min_interval_s=0",
        "dispatch_overhead_s=0", "chunk_size=4", "batch_size=4"]


class Books(Observer):
    """Every deal stored, with how often, and the largest number of calls out at once."""

    def __init__(self, tokens=None):
        self.stored: dict[str, int] = {}
        self.tokens = tokens

    def on_stored(self, t, task, asins):
        for asin in asins:
            self.stored[asin] = self.stored.get(asin, 0) + 1


class Counting(MockKeepa):
    """The mock, counting the calls between `begin` and `finish`."""

    def __init__(self, *args):
        super().__init__(*args)
        self.out = self.most_out = 0

    def begin(self, *args, **kwargs):
        pending = super().begin(*args, **kwargs)
        self.out += 1
        self.most_out = max(self.most_out, self.out)
        return pending

    def finish(self, *args, **kwargs):
        self.out -= 1
        return super().finish(*args, **kwargs)


def world(backlog=600, seed=5, **server) -> Counting:
    settings = ServerSettings(rate=600, **server)
    return Counting(settings, DealMarket(MarketSettings(backlog=backlog, arrivals_per_hour=0),
                                         seed, START), seed, START)


def run_backfill(server, storage, config, books, start_ms=0, until_ms=None):
    env = simpy.Environment(initial_time=start_ms)
    runtime = SimRuntime(env, server, START, seed=start_ms)
    collector = Collector(runtime, config, storage, books)
    runtime.spawn(backfill(collector))
    env.run(until=until_ms)
    return collector


def test_the_in_flight_limit_holds_and_is_used():
    for limit in (1, 3, 8):
        server = world()
        config = Config.load("fixed", overrides=[*FAST, f"max_in_flight={limit}"])
        run_backfill(server, MemoryStorage(), config, Books())
        assert server.most_out == limit


def test_more_calls_in_flight_walk_the_list_faster_at_the_same_cost_per_deal():
    walked = {}
    for limit in (1, 4):
        server, storage = world(backlog=3000), MemoryStorage()
        config = Config.load("fixed", overrides=[*FAST, f"max_in_flight={limit}"])
        run_backfill(server, storage, config, Books(), until_ms=300_000)
        walked[limit] = (storage.cursor().page * DEAL_PAGE_SIZE + storage.cursor().index,
                         server.bucket.charged / max(1, storage.count()))
    assert walked[4][0] > 2.5 * walked[1][0]
    assert abs(walked[4][1] / walked[1][1] - 1) < 0.2


def test_reservations_of_calls_in_flight_keep_the_belief_below_the_server():
    """Eight calls out at once each reserve their cost: the client never believes in
    more tokens than the server will have once they are charged, so none meets a 429."""
    server = world(initial=400)
    books = Books()
    config = Config.load("fixed", overrides=[*FAST, "max_in_flight=8", "peek_reserved_per_asin=8",
                                             "full_reserved_per_asin=8"])
    collector = run_backfill(server, MemoryStorage(), config, books, until_ms=1_200_000)
    assert server.http_429 == 0
    assert collector.tokens.in_flight <= 8


def expected(server, upto: int, config) -> set[str]:
    market = server.market
    return {a for a in market.listing(SORT_SALES_RANK)[:upto]
            if profitable(config, market.deals[a].sell, market.deals[a].buy)}


def test_crashes_with_chunks_in_flight_lose_nothing_and_repeat_nothing():
    """Thirty crashes at random moments, each dropping the collector with up to six
    chunks in flight; storage survives, and a new collector resumes from its cursor."""
    rng = random.Random(11)
    server, storage, books = world(backlog=1500), MemoryStorage(), Books()
    config = Config.load("fixed", overrides=[*FAST, "max_in_flight=6"])
    cursors, at, ahead = [], 0, 0
    for crash in range(30):
        until = at + rng.randint(2_000, 40_000)
        run_backfill(server, storage, config, books, start_ms=at, until_ms=until)
        at = until
        cursor = storage.cursor()
        position = cursor.page * DEAL_PAGE_SIZE + cursor.index
        cursors.append(position)
        # nothing the cursor has passed is missing: it never skips an uncommitted chunk
        behind = expected(server, position, config)
        assert behind <= set(storage.deals)
        ahead += bool(set(storage.deals) - behind)  # chunks committed out of order
    assert ahead >= 10, "too few crashes caught chunks committed beyond the cursor"
    assert cursors == sorted(cursors), f"the cursor went back: {cursors}"
    assert cursors[-1] > 600
    assert all(times == 1 for times in books.stored.values()), "a deal was stored twice"
    assert set(storage.deals) <= expected(server, 10_000, config)


def test_the_cursor_moves_only_over_the_contiguous_committed_chunks():
    from collector.backfill import Walk
    from collector.storage import Cursor

    walk = Walk.__new__(Walk)
    walk.committed, walk.done = 150 * 2 + 4, {}
    assert walk._advance(308, 312) is None  # the chunk before it is still out
    assert walk._advance(312, 316) is None
    assert walk._advance(304, 308) == Cursor(2, 16)
    assert walk._advance(316, 450) == Cursor(3, 0)  # the end of a full page: the next one
