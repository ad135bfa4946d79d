"""From ASINs to stored deals: peek, filter, full fetch, seller lookup.

Both tasks use this one path; they differ only in whether they peek first
(the backfiller does, the recent-deals updater does not, as in the seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .config import Config
from .storage import StoredDeal

if TYPE_CHECKING:
    from .app import Collector

NEW = 1  # Keepa's csv index of the lowest new price


def prices(product: dict) -> tuple[int, int]:
    """(sell, buy) in cents: the 90-day average and the current lowest new price."""
    stats = product.get("stats") or {}
    avg90, current = stats.get("avg90") or [], stats.get("current") or []
    sell = avg90[NEW] if len(avg90) > NEW else -1
    buy = current[NEW] if len(current) > NEW else -1
    return sell, buy


def accepts(config: Config, product: dict) -> bool:
    """The profitability filter: sells for enough, and buying now returns enough."""
    sell, buy = prices(product)
    if sell < config.filter_min_sell_cents or buy <= 0:
        return False
    return (sell - buy) / buy >= config.filter_min_roi


async def ingest(ctx: Collector, task: str, deals: Sequence[dict], *, peek: bool,
                 batch_size: int) -> list[StoredDeal]:
    """The deals among `deals` worth keeping, fetched in batches of `batch_size`."""
    config, client = ctx.config, ctx.client
    last_update = {d["asin"]: int(d.get("lastUpdate", 0)) for d in deals}
    asins = list(last_update)
    kept: list[StoredDeal] = []
    for start in range(0, len(asins), batch_size):
        batch = asins[start:start + batch_size]
        ctx.observer.on_examined(ctx.runtime.now(), task, len(batch))
        if peek:
            peeked = await client.products(
                task, batch, config.peek_reserved_per_asin, offers=config.peek_offers,
                stats_days=config.peek_stats_days, history=False, rating=config.peek_rating)
            if config.peek_filter:
                batch = [p["asin"] for p in peeked if accepts(config, p)]
            else:
                batch = [p["asin"] for p in peeked]
            if not batch:
                continue
        full = await client.products(
            task, batch, config.full_reserved_per_asin, offers=config.full_offers,
            stats_days=config.full_days, history=True, rating=True, days=config.full_days)
        for product in full:
            if not accepts(config, product):
                continue
            seller = product.get("buyBoxSellerId") or ""
            if config.seller_lookup and seller:
                await client.sellers(task, [seller])
            sell, buy = prices(product)
            kept.append(StoredDeal(product["asin"], task, last_update.get(product["asin"], 0),
                                   product.get("title", ""), buy, sell, seller))
    return kept
