"""The recent-deals updater: new deals since the watermark, on a schedule.

Pages the deal list in `recent_sort` order (newest first, unless a preset copies
the seed's sortType 4) until a deal at or below the watermark,
`recent_max_pages` or `recent_max_deals`; fetches (peeking first with
`recent_peek`) and stores the new ones a batch per commit, ``max_in_flight``
batches at once; then moves the watermark to the newest deal of page 0, once,
at the end (seed-system.md §1.5) - so deals past the per-run cap are skipped
for good, as in the seed. A run with no watermark yet only sets it: the
backlog is the backfiller's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .keepa import DEAL_PAGE_SIZE
from .lanes import run_lanes
from .pipeline import ingest

if TYPE_CHECKING:
    from .app import Collector

TASK = "recent"


async def recent(ctx: Collector) -> None:
    config, storage = ctx.config, ctx.storage
    if config.sync_on_start:
        await ctx.client.sync(TASK)
    watermark = storage.watermark()
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
            if int(deal.get("lastUpdate", 0)) <= watermark or len(fresh) >= config.recent_max_deals:
                done = True
                break
            fresh.append(deal)
        if done:
            break
    if watermark is not None:
        known = storage.known(d["asin"] for d in fresh)
        new = [d for d in fresh if d["asin"] not in known]
        size = config.recent_batch_size
        batches = iter([new[start:start + size] for start in range(0, len(new), size)])

        async def step() -> bool:
            batch = next(batches, None)
            if batch is None:
                return False
            kept = await ingest(ctx, TASK, batch, peek=config.recent_peek, batch_size=size)
            await ctx.runtime.sleep(config.commit_overhead_s)
            ctx.commit(TASK, kept)
            return True

        await run_lanes(ctx.runtime, config.max_in_flight, step)
    if newest is not None and (watermark is None or newest > watermark):
        ctx.commit(TASK, [], watermark=newest)
