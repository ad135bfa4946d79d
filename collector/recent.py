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
so that Keepa's newest 10,000 never move past deals it has not seen; one lane
reads while the others fetch, and the run moves the watermark at each read.
The deals it had no time (or tokens) for yet wait in `Collector.recent_pending`,
newest first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .batching import fit
from .callmodel import kind
from .keepa import DEAL_PAGE_SIZE
from .lanes import run_lanes
from .pipeline import full_query, ingest, peek_query

if TYPE_CHECKING:
    from .app import Collector
    from .runtime import Signal

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
    config = ctx.config
    paced = config.recent_max_interval_s is not None
    if paced and not _due(ctx):
        return
    if config.sync_on_start:
        await ctx.client.sync(TASK)
    run = _Run(ctx, paced)
    if await run.read() is not None:
        await run_lanes(ctx.runtime, config.max_in_flight, run.step)
    run.mark()


class _Run:
    """One recent run: its lanes fetch and store the listed deals, newest first, then
    those earlier runs left (`Collector.recent_pending`). A run that paces itself
    reads the list again once it is due (`Pace`, and at least ``recent_period_s``
    after the last read: Keepa answers the same list for 120 s); one lane reads it
    while the others go on fetching, so a listing of many pages never stalls the
    calls in flight, and no lane ends while a read may bring more work."""

    def __init__(self, ctx: Collector, paced: bool):
        self.ctx = ctx
        self.paced = paced
        self.listed_at = 0.0
        self.newest: int | None = None  # the newest deal of page 0 at the last read
        self.known: int | None = None  # the watermark as this run last read or moved it
        self.reading: Signal | None = None  # set while a lane reads the list (lanes > 1)

    async def read(self) -> int | None:
        """Read the list and queue its new deals; the watermark it stood at (None on the
        first run ever, which only sets it: the backlog is the backfiller's). A run that
        paces itself moves the watermark at once, since its lanes fetch while it reads
        again; any other when its deals are stored (`mark`), so a run that fails leaves
        it where it was."""
        ctx, config, pending = self.ctx, self.ctx.config, self.ctx.recent_pending
        watermark = self.known = ctx.storage.watermark()
        self.listed_at = ctx.runtime.now()
        if config.max_in_flight > 1:  # other lanes may wait on the read
            self.reading = ctx.runtime.signal()
        try:
            newest, fresh = await _list(ctx, watermark)
        finally:
            if self.reading is not None:
                self.reading.fire()
                self.reading = None
        if watermark is not None:
            if self.paced:
                ctx.recent_pace.read(ctx.runtime.now(), len(fresh))
            pending.extendleft(reversed(fresh))  # the newest first, before older ones
            while len(pending) > config.recent_max_deals:
                pending.pop()  # the oldest waiting deals go: a newer listing replaced them
        self.newest = newest
        if self.paced or watermark is None:
            self.mark()
        return watermark

    def mark(self) -> None:
        """Move the watermark to the newest deal of page 0 of the last read, if that is
        newer than the watermark as this run knows it. (A run that overlapped this one may
        have moved it further meanwhile: `Process.commit` keeps the furthest.)"""
        if self.newest is not None and (self.known is None or self.newest > self.known):
            self.ctx.commit(TASK, [], watermark=self.newest)
            self.known = self.newest

    def _due(self) -> bool:
        now = self.ctx.runtime.now()
        return (self.paced and self.reading is None
                and now - self.listed_at >= self.ctx.config.recent_period_s and _due(self.ctx))

    async def step(self) -> bool:
        """One lane's next piece of work: read the list if it is due, else fetch and store
        a batch; False once nothing waits and no read is due or under way."""
        ctx, config, pending = self.ctx, self.ctx.config, self.ctx.recent_pending
        if self._due():
            await self.read()
            return True
        if not pending:
            if self.reading is None:
                return False
            await self.reading  # the read under way may bring more
            return True
        first, guess = ((peek_query, config.peek_reserved_per_asin) if config.recent_peek
                        else (full_query, config.full_reserved_per_asin))
        size = fit(ctx.tokens, config.recent_batch_size, first, guess)
        batch = [pending.popleft() for _ in range(min(size, len(pending)))]
        known = ctx.storage.known(d["asin"] for d in batch)
        kept = await ingest(ctx, TASK, [d for d in batch if d["asin"] not in known],
                            peek=config.recent_peek, batch_size=size,
                            full_batch_size=fit(ctx.tokens, None, full_query,
                                                config.full_reserved_per_asin))
        await ctx.runtime.sleep(config.commit_overhead_s)
        ctx.commit(TASK, kept)
        return True


def _due(ctx: Collector) -> bool:
    """Whether a run that paces itself reads the list now: when `Pace` says so, within
    ``recent_max_interval_s`` or, with ``recent_read_share``, as soon as a read costs at
    most that share of the refill since the last one (a page's price over the share of
    the rate), so the bigger the plan, the more often the list is read."""
    now, config, tokens = ctx.runtime.now(), ctx.config, ctx.tokens
    longest = config.recent_max_interval_s
    if config.recent_read_share is not None and tokens.rate > 0:
        page = tokens.calls.price(kind("deal", {}), 1, config.recent_page_reserved)
        longest = min(longest, page * 60.0 / (config.recent_read_share * tokens.rate))
    return ctx.recent_pace.due(now, longest)


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
        ctx.storage.seen((d["asin"] for d in page), ctx.runtime.now())
        if page_no == 0 and page:
            newest = max(d.get("lastUpdate", 0) for d in page)
        if watermark is None:
            break
        done = len(page) < DEAL_PAGE_SIZE
        for deal in page:
            stamp = deal.get("lastUpdate", 0)
            older = stamp < watermark if config.recent_same_minute else stamp <= watermark
            if older or len(fresh) >= config.recent_max_deals:
                done = True
                break
            fresh.append(deal)
        if done:
            break
    return newest, fresh
