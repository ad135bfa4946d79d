"""The backfiller: walks the deal list from its cursor, a chunk per commit.

Per chunk: peek the chunk's new ASINs, full-fetch the survivors, then store
them and advance the cursor in one commit, so a crash or an aborted run
resumes at the first uncommitted chunk (seed-system.md §1.4, commit 39aa065).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .client import DEAL_PAGE_SIZE, SORT_SALES_RANK
from .pipeline import ingest
from .storage import Cursor

if TYPE_CHECKING:
    from .app import Collector

TASK = "backfill"


async def backfill(ctx: Collector) -> None:
    config, storage = ctx.config, ctx.storage
    if config.sync_on_start:
        await ctx.client.sync(TASK)
    cursor = storage.cursor()
    while True:
        page = await ctx.client.deals(TASK, cursor.page, SORT_SALES_RANK, config.deal_page_reserved)
        for start in range(cursor.index, len(page), config.chunk_size):
            chunk = page[start:start + config.chunk_size]
            known = storage.known(d["asin"] for d in chunk)
            kept = await ingest(ctx, TASK, [d for d in chunk if d["asin"] not in known],
                                peek=True, batch_size=config.batch_size)
            await ctx.runtime.sleep(config.chunk_overhead_s + config.commit_overhead_s)
            cursor = Cursor(cursor.page, start + len(chunk))
            ctx.commit(TASK, kept, cursor=cursor)
            if config.trigger_recent_after_chunk:
                ctx.scheduler.trigger("recent")
        if len(page) < DEAL_PAGE_SIZE:
            return  # the end of the list: the next run looks again from here
        cursor = Cursor(cursor.page + 1, 0)
        ctx.commit(TASK, [], cursor=cursor)
