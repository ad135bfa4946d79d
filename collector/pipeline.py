"""From ASINs to stored deals: peek, filter, full fetch, seller lookup.

Both tasks use this one path; they differ only in whether they peek first
(the backfiller does, the recent-deals updater does not, as in the seed).
A call the client gives up on a 429 (``on_429 = "drop"``, `Refused`) loses
what it was for, as the seed's fetch functions that returned nothing: a
peek or a full fetch its deals, a seller lookup its seller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .client import Refused
from .config import Config
from .keepa import NEW
from .storage import StoredDeal

if TYPE_CHECKING:
    from .app import Collector

def prices(product: dict) -> tuple[int, int]:
    """(sell, buy) in cents: the 90-day average and the current lowest new price."""
    stats = product.get("stats") or {}
    avg90, current = stats.get("avg90") or [], stats.get("current") or []
    sell = avg90[NEW] if len(avg90) > NEW else -1
    buy = current[NEW] if len(current) > NEW else -1
    return sell, buy


def buy_box_seller(product: dict) -> str:
    """The buy-box seller's id, or "" if there is none: Keepa puts it in the product's
    ``stats`` (Stats.java ``buyBoxSellerId``; "-1" none qualified, "-2" unknown)."""
    seller = (product.get("stats") or {}).get("buyBoxSellerId") or ""
    return "" if seller in ("-1", "-2") else seller


def accepts(config: Config, product: dict) -> bool:
    """The profitability filter over a product's prices (see `profitable`)."""
    sell, buy = prices(product)
    return profitable(config, sell, buy)


def profitable(config: Config, sell, buy):
    """The filter's one rule: sells for enough, and buying now returns enough.

    Written with ``&`` so that it takes numbers or numpy arrays of prices alike:
    the bound counts a whole market's passing deals with this same rule.
    """
    divisor = buy + (buy <= 0) * (1 - buy)  # buy where it is positive, else 1 (rejected anyway)
    return ((buy > 0) & (sell >= config.filter_min_sell_cents)
            & ((sell - buy) / divisor >= config.filter_min_roi))


def peek_query(config: Config) -> dict:
    """The peek's ``/product`` parameters: current prices and their averages, no history."""
    return {"offers": config.peek_offers, "stats_days": config.peek_stats_days,
            "history": False, "rating": config.peek_rating}


def full_query(config: Config) -> dict:
    """The full fetch's ``/product`` parameters: the data a stored deal carries."""
    return {"offers": config.full_offers, "stats_days": config.full_days, "history": True,
            "rating": True, "days": config.full_days}


async def ingest(ctx: Collector, task: str, deals: Sequence[dict], *, peek: bool,
                 batch_size: int, full_batch_size: int | None = None) -> list[StoredDeal]:
    """The deals among `deals` worth keeping, fetched in batches of `batch_size`; a
    peeked batch's survivors are full-fetched `full_batch_size` at a time (default: all).

    Deals another task of this collector is fetching, or has already examined,
    are left out (`Collector.claim`), so two tasks never pay for the same deal."""
    config, client = ctx.config, ctx.client
    last_update = {d["asin"]: d.get("lastUpdate", 0) for d in deals}
    asins = ctx.claim(last_update)
    try:
        return await _fetch(ctx, task, asins, last_update, peek, batch_size, full_batch_size)
    except BaseException:
        ctx.unclaim(asins)  # not stored: let a later run try them again
        raise


async def _fetch(ctx: Collector, task: str, asins: list[str], last_update: dict[str, int],
                 peek: bool, batch_size: int,
                 full_batch_size: int | None) -> list[StoredDeal]:
    config, client = ctx.config, ctx.client
    kept: list[StoredDeal] = []
    for start in range(0, len(asins), batch_size):
        batch = asins[start:start + batch_size]
        ctx.observer.on_examined(ctx.runtime.now(), task, len(batch))
        if peek:
            try:
                peeked = await client.products(task, batch, config.peek_reserved_per_asin,
                                               **peek_query(config))
            except Refused:
                continue  # no full fetch for a failed peek
            if config.peek_filter:
                batch = [p["asin"] for p in peeked if accepts(config, p)]
            else:
                batch = [p["asin"] for p in peeked]
            if not batch:
                continue
        size = full_batch_size or len(batch)
        for first in range(0, len(batch), size):
            kept += await _full_fetch(ctx, task, batch[first:first + size], last_update)
    return kept


async def _full_fetch(ctx: Collector, task: str, batch: list[str],
                      last_update: dict[str, int]) -> list[StoredDeal]:
    """One full-fetch call of `batch`, the seller lookups of the deals worth keeping
    (of every deal fetched with ``seller_lookup_all``), and those deals."""
    config, client = ctx.config, ctx.client
    try:
        full = await client.products(task, batch, config.full_reserved_per_asin,
                                     **full_query(config))
    except Refused:
        return []
    worth = [product for product in full if accepts(config, product)]
    sellers = [buy_box_seller(product) for product in worth]
    if config.seller_lookup:
        looked = map(buy_box_seller, full) if config.seller_lookup_all else sellers
        ids = ctx.sellers_due(seller for seller in looked if seller)
        for first in range(0, len(ids), config.seller_batch_size):
            try:
                await client.sellers(task, ids[first:first + config.seller_batch_size])
            except Refused:
                pass  # the deals are stored all the same
    kept = []
    for product, seller in zip(worth, sellers):
        sell, buy = prices(product)
        kept.append(StoredDeal(product["asin"], task, last_update.get(product["asin"], 0),
                               product.get("title") or "", buy, sell, seller))
    return kept
