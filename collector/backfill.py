"""The backfiller: walks the deal list from its cursor, a chunk per commit.

Per chunk: peek the chunk's new ASINs, full-fetch the survivors, then store
them in one commit (seed-system.md §1.4, commit 39aa065). With
``max_in_flight`` above 1, that many lanes work on consecutive chunks at once
and finish out of order; the cursor then moves like a consumer's committed
offset: only over the contiguous run of chunks already committed, in the
same commit as the chunk that completes the run. So a crash or an aborted
run resumes at the first uncommitted chunk and never skips one; the chunks
committed beyond it are walked again, and their deals, known by then, cost
nothing more (those examined and not kept cost again).

With ``checkpoint = "page"`` the cursor is saved only once the committed run
reaches the end of a page, and then at the next page's start (the seed before
commit 39aa065, seed-system.md §1.4 and §3 S21): the chunks are still stored
one commit each, but a crash mid-page resumes at the page's first deal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .keepa import DEAL_PAGE_SIZE, SORT_SALES_RANK
from .batching import fit
from .lanes import run_lanes
from .pipeline import full_query, ingest, peek_query
from .storage import Cursor

if TYPE_CHECKING:
    from .app import Collector
    from .runtime import Signal

TASK = "backfill"


async def backfill(ctx: Collector) -> None:
    if ctx.config.sync_on_start:
        await ctx.client.sync(TASK)
    walk = Walk(ctx, ctx.storage.cursor())
    await run_lanes(ctx.runtime, ctx.config.max_in_flight, walk.step)


class Walk:
    """One run's walk down the deal list: hands out chunks to the lanes, fetches the
    next page when a lane runs out, and tracks which chunks are committed."""

    per_page = False  # the cursor is saved only at page boundaries (``checkpoint``)

    def __init__(self, ctx: Collector, cursor: Cursor):
        self.ctx = ctx
        self.page_no = cursor.page
        self.page: list[dict] | None = None  # the page chunks are handed out from
        self.next_index = cursor.index
        self.fetching: Signal | None = None  # set while a lane fetches the next page
        self.failed = False  # a page fetch failed: the run ends once the lanes are done
        self.committed = _position(cursor)  # list position of the committed run's end
        self.per_page = ctx.config.checkpoint == "page"
        self.saved_page = cursor.page  # the page the stored cursor stands on
        self.done: dict[int, int] = {}  # committed chunks beyond it: start -> end

    async def step(self) -> bool:
        """Process one chunk; False when the walk has reached the end of the list."""
        taken = await self._take()
        if taken is None:
            return False
        start, chunk = taken
        ctx, config = self.ctx, self.ctx.config
        known = ctx.storage.known(d["asin"] for d in chunk)
        tokens = ctx.tokens
        kept = await ingest(
            ctx, TASK, [d for d in chunk if d["asin"] not in known], peek=True,
            batch_size=fit(tokens, config.peek_batch_at(tokens.rate), peek_query,
                           config.peek_reserved_per_asin),
            full_batch_size=fit(tokens, config.full_batch(), full_query,
                                config.full_reserved_per_asin))
        await ctx.runtime.sleep(config.chunk_overhead_s + config.commit_overhead_s)
        ctx.commit(TASK, kept, cursor=self._advance(start, start + len(chunk)))
        if config.trigger_recent_after_chunk:
            ctx.scheduler.trigger("recent")
        return True

    async def _take(self) -> tuple[int, list[dict]] | None:
        """The next chunk as (list position, deals), or None at the end of the list."""
        config, tokens = self.ctx.config, self.ctx.tokens
        size = fit(tokens, config.chunk_at(tokens.rate), peek_query,
                   config.peek_reserved_per_asin)
        while not self.failed:
            page = self.page
            if page is not None and self.next_index < len(page):
                index, self.next_index = self.next_index, self.next_index + size
                return self.page_no * DEAL_PAGE_SIZE + index, page[index:index + size]
            if page is not None and len(page) < DEAL_PAGE_SIZE:
                return None  # the end of the list: the next run looks again from here
            if self.fetching is not None:  # another lane is fetching the next page
                await self.fetching
                continue
            await self._fetch_next()
        return None

    async def _fetch_next(self) -> None:
        self.fetching = self.ctx.runtime.signal()
        number = self.page_no if self.page is None else self.page_no + 1
        try:
            page = await self.ctx.client.deals(TASK, number, SORT_SALES_RANK,
                                               self.ctx.config.deal_page_reserved)
        except BaseException:
            self.failed = True
            raise
        finally:
            self.fetching.fire()
            self.fetching = None
        self.ctx.storage.seen((d["asin"] for d in page), self.ctx.runtime.now())
        if self.page is not None:
            self.next_index = 0
        self.page_no, self.page = number, page

    def _advance(self, start: int, end: int) -> Cursor | None:
        """Record the chunk [start, end) as committed; the new cursor if the contiguous
        committed run now reaches further (by ``checkpoint``: any further, or into a
        page beyond the saved one), else None."""
        self.done[start] = end
        if start != self.committed:
            return None
        while self.committed in self.done:
            self.committed = self.done.pop(self.committed)
        page, index = divmod(self.committed, DEAL_PAGE_SIZE)
        if not self.per_page:
            return Cursor(page, index)
        if page == self.saved_page:
            return None
        self.saved_page = page
        return Cursor(page, 0)


def _position(cursor: Cursor) -> int:
    return cursor.page * DEAL_PAGE_SIZE + cursor.index
