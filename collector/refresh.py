"""The refresher: re-fetches the stored deals whose data is oldest, with spare tokens.

Each run takes up to ``refresh_max_deals`` stored deals whose data is older
than ``refresh_age_s``, oldest first, and asks ``/product`` for their current
prices in batches of ``refresh_batch_size``: a light update (stats, no
history, no offers: 1 token an ASIN), with the offers as well for the deals
whose offers are older than ``refresh_offers_age_s``. A refreshed deal counts
as seen again. A batch goes only while the estimate is at least
``refresh_floor``, so new deals keep the tokens below it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lanes import run_lanes
from .pipeline import prices

if TYPE_CHECKING:
    from .app import Collector

TASK = "refresh"


async def refresh(ctx: Collector) -> None:
    config, client = ctx.config, ctx.client
    if config.sync_on_start:
        await client.sync(TASK)
    due = ctx.storage.stale(ctx.runtime.now(), config.refresh_age_s, config.refresh_max_deals)
    size = config.refresh_batch_size
    batches = []
    for offers in (True, False):
        asins = [a for a, offers_age in due if (offers_age >= config.refresh_offers_age_s)
                 == offers]
        batches += [(asins[i:i + size], offers) for i in range(0, len(asins), size)]
    work = iter(batches)

    async def step() -> bool:
        batch = next(work, None)
        if batch is None or ctx.tokens.estimate(ctx.runtime.now()) < config.refresh_floor:
            return False
        asins, offers = batch
        reserved = config.full_reserved_per_asin if offers else config.refresh_reserved_per_asin
        products = await client.products(
            TASK, asins, reserved, offers=config.full_offers if offers else 0,
            stats_days=config.peek_stats_days, history=False, rating=False)
        rows = []
        for product in products:
            sell, buy = prices(product)
            rows.append((product["asin"], buy, sell))
        ctx.refreshed(TASK, rows, offers=offers and bool(config.full_offers))
        return True

    await run_lanes(ctx.runtime, config.max_in_flight, step)
