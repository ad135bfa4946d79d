"""The recent-deals updater: new deals since the watermark, on a schedule.

Pages the deal list in `recent_sort` order (newest first, unless a preset copies
the seed's sortType 4) until a deal at or below the watermark,
`recent_max_pages` or `recent_max_deals`; fetches (peeking first with
`recent_peek`) and stores the new ones a batch per commit, ``max_in_flight``
batches at once; then moves the watermark to the newest deal of page 0, once,
at the end (seed-system.md §1.5) - so deals past the per-run cap are skipped
for good, as in the seed. A run with no watermark yet only sets it: the
backlog is the backfiller's.

A run that paces itself (``recent_max_interval_s``, see `Pace`) reads the list
again ``recent_period_s`` after it last read it, while deals are still waiting,
so that Keepa's newest 10,000 never move past deals it has not seen; the deals
it had no time (or tokens) for yet wait in `Collector.recent_pending`, newest
first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .keepa import DEAL_PAGE_SIZE
from .lanes import run_lanes
from .pipeline import ingest

if TYPE_CHECKING:
    from .app import Collector

TASK = "recent"


class Pace:
    """When a recent run that paces itself (``recent_max_interval_s``) is due: once the
    arrival rate it measured promises a page of new deals since it last found some,
    or that long after. A page costs the same whether it holds one new deal or 150,
    so on a quiet market the run waits for a page's worth, and on a busy one it
    reads every minute the beat offers. A read that finds nothing new (a quiet
    minute, or Keepa's 120 s cache of the last answer) teaches nothing: the next
    beat asks again until one does."""

    def __init__(self) -> None:
        self.found_at: float | None = None  # when a read last found new deals
        self.rate: float | None = None  # new deals a second, as that read measured

    def due(self, now: float, longest: float) -> bool:
        if self.found_at is None or self.rate is None:
            return True
        waited = now - self.found_at
        return waited >= longest or self.rate * waited >= DEAL_PAGE_SIZE

    def read(self, now: float, found: int) -> None:
        if not found:
            return
        if self.found_at is not None and now > self.found_at:
            self.rate = found / (now - self.found_at)
        self.found_at = now


async def recent(ctx: Collector) -> None:
    config, storage = ctx.config, ctx.storage
    paced = config.recent_max_interval_s is not None
    if paced and not _due(ctx):
        return
    if config.sync_on_start:
        await ctx.client.sync(TASK)
    while True:
        watermark = storage.watermark()
        listed_at = ctx.runtime.now()
        newest, fresh = await _list(ctx, watermark)
        if watermark is not None:
            await _fetch(ctx, fresh, listed_at if paced else None)
        if newest is not None and (watermark is None or newest > watermark):
            ctx.commit(TASK, [], watermark=newest)
        if not (paced and ctx.recent_pending):
            return  # a run that paces itself reads the list again while deals wait


async def _fetch(ctx: Collector, fresh: list[dict], listed_at: float | None) -> None:
    """Fetch and store new deals, `fresh` first, then those earlier runs left; with
    `listed_at`, only until the list is due to be read again (`Pace`, and at least
    ``recent_period_s`` after it was read: Keepa answers the same list for 120 s)."""
    config, storage, pending = ctx.config, ctx.storage, ctx.recent_pending
    if listed_at is not None:
        ctx.recent_pace.read(ctx.runtime.now(), len(fresh))
    pending.extendleft(reversed(fresh))  # the newest first, before what older runs left
    while len(pending) > config.recent_max_deals:
        pending.pop()  # the oldest waiting deals go: a newer listing replaced them
    size = config.recent_batch_size

    def due(now: float) -> bool:
        return now - listed_at >= config.recent_period_s and _due(ctx)

    async def step() -> bool:
        if listed_at is not None and due(ctx.runtime.now()):
            return False  # time to read the list again
        batch = [pending.popleft() for _ in range(min(size, len(pending)))]
        if not batch:
            return False
        known = storage.known(d["asin"] for d in batch)
        kept = await ingest(ctx, TASK, [d for d in batch if d["asin"] not in known],
                            peek=config.recent_peek, batch_size=size)
        await ctx.runtime.sleep(config.commit_overhead_s)
        ctx.commit(TASK, kept)
        return True

    await run_lanes(ctx.runtime, config.max_in_flight, step)


def _due(ctx: Collector) -> bool:
    """Whether a run that paces itself reads the list now: when `Pace` says so, or
    whenever tokens are spare (the estimate above half the bucket), since a page then
    costs nothing that new deals would have bought."""
    now, tokens = ctx.runtime.now(), ctx.tokens
    return (ctx.recent_pace.due(now, ctx.config.recent_max_interval_s)
            or tokens.estimate(now) >= tokens.cap / 2)


async def _list(ctx: Collector, watermark: int | None) -> tuple[int | None, list[dict]]:
    """Read the deal list down to the watermark: the newest deal of page 0, and the deals
    newer than the watermark (within ``recent_max_pages`` and ``recent_max_deals``); with
    ``recent_same_minute``, those of the watermark's own minute too."""
    config = ctx.config
    newest: int | None = None
    fresh: list[dict] = []
    for page_no in range(config.recent_max_pages):
        page = await ctx.client.deals(TASK, page_no, config.recent_sort,
                                      config.recent_page_reserved)
        if page_no == 0 and page:
            newest = max(int(d.get("lastUpdate", 0)) for d in page)
        if watermark is None:
            break
        done = len(page) < DEAL_PAGE_SIZE
        for deal in page:
            stamp = int(deal.get("lastUpdate", 0))
            older = stamp < watermark if config.recent_same_minute else stamp <= watermark
            if older or len(fresh) >= config.recent_max_deals:
                done = True
                break
            fresh.append(deal)
        if done:
            break
    return newest, fresh
