"""The backfiller: walks the deal list from its cursor, a chunk per commit.

Per chunk: peek the chunk's new ASINs, full-fetch the survivors, then store
them in one commit (seed-system.md §1.4, commit 39aa065). With
``max_in_flight`` above 1, that many lanes work on consecutive chunks at once
and finish out of order; the cursor then moves like a consumer's committed
offset: only over the contiguous run of chunks already committed, in the
same commit as the chunk that completes the run. So a crash or an aborted
run resumes at the first uncommitted chunk and never skips one; the chunks
committed beyond it are walked again, and their deals, known by then, cost
nothing more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .keepa import DEAL_PAGE_SIZE, SORT_SALES_RANK
from .lanes import run_lanes
from .pipeline import ingest
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

    def __init__(self, ctx: Collector, cursor: Cursor):
        self.ctx = ctx
        self.page_no = cursor.page
        self.page: list[dict] | None = None  # the page chunks are handed out from
        self.next_index = cursor.index
        self.fetching: Signal | None = None  # set while a lane fetches the next page
        self.failed = False  # a page fetch failed: the run ends once the lanes are done
        self.committed = _position(cursor)  # list position the cursor stands at
        self.done: dict[int, int] = {}  # committed chunks beyond it: start -> end

    async def step(self) -> bool:
        """Process one chunk; False when the walk has reached the end of the list."""
        taken = await self._take()
        if taken is None:
            return False
        start, chunk = taken
        ctx, config = self.ctx, self.ctx.config
        known = ctx.storage.known(d["asin"] for d in chunk)
        kept = await ingest(ctx, TASK, [d for d in chunk if d["asin"] not in known],
                            peek=True, batch_size=config.peek_batch_at(ctx.tokens.rate),
                            full_batch_size=config.commit_batch_size)
        await ctx.runtime.sleep(config.chunk_overhead_s + config.commit_overhead_s)
        ctx.commit(TASK, kept, cursor=self._advance(start, start + len(chunk)))
        if config.trigger_recent_after_chunk:
            ctx.scheduler.trigger("recent")
        return True

    async def _take(self) -> tuple[int, list[dict]] | None:
        """The next chunk as (list position, deals), or None at the end of the list."""
        size = self.ctx.config.chunk_at(self.ctx.tokens.rate)
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
        if self.page is not None:
            self.next_index = 0
        self.page_no, self.page = number, page

    def _advance(self, start: int, end: int) -> Cursor | None:
        """Record the chunk [start, end) as committed; the new cursor if the contiguous
        committed run now reaches further, else None."""
        self.done[start] = end
        if start != self.committed:
            return None
        while self.committed in self.done:
            self.committed = self.done.pop(self.committed)
        return Cursor(*divmod(self.committed, DEAL_PAGE_SIZE))


def _position(cursor: Cursor) -> int:
    return cursor.page * DEAL_PAGE_SIZE + cursor.index
