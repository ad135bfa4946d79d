"""What a call to the mock costs and how long it takes (keepa-api.md §1, §6.4).

The one home of these rules: the server charges and delays calls by them,
and the bound (`sim.bound`) asks them what the fewest tokens and seconds a
stored deal can take are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .market import Deal
    from .server import ProductQuery

DEAL_PAGE_COST = 5.0  # tokens per /deal page, whatever it holds (§1.1)
LATENCY_MS = {  # processing time: (low, high, mean or None for uniform, + per ASIN), ms
    "token": (20, 80, None, 0), "refused": (5, 20, None, 0), "deal": (300, 1200, None, 0),
    "product": (100, 400, None, 20),  # without offers: a little more per ASIN
    "offers": (2000, 20000, 5000, 0),  # fetching live offers: 2-20 s, 5 s on average (§1.2)
    "seller": (100, 400, None, 0)}


def product_cost(deal: Deal, q: ProductQuery, *, offers_fetched: bool = False,
                 failed: bool = False, refreshed_lately: bool = False) -> float:
    """What one found product of a /product call costs (keepa-api.md §1.2): 1; with
    offers 6 per found offer page instead, or a flat 5 if the offers are fresher than
    `update` hours (`offers_fetched`: someone fetched them that recently), or 1 if
    the offer fetch `failed`; +2 stock with offers, +2 buybox without; +1 for
    update=0 on data refreshed within the hour; +1 rating when the rating is fresh."""
    if q.offers:
        if failed:
            cost = 1
        elif offers_fresh(deal, q, offers_fetched):
            cost = 5
        else:
            cost = 6 * min(deal.offer_pages, q.offers // 10)
        cost += 2 if q.stock else 0
    else:
        cost = 1 + (2 if q.buybox else 0)
        if q.update == 0 and refreshed_lately:
            cost += 1  # forcing a refresh of data Keepa would still have served
    return float(cost + (1 if q.rating and deal.rating_fresh else 0))


def offers_fresh(deal: Deal, q: ProductQuery, offers_fetched: bool) -> bool:
    """Whether Keepa serves the offers from its copy (the flat 5): never refreshed on
    ``update=-1``, or refreshed lately for someone else or by an earlier call."""
    return q.update == -1 or q.update > 0 and (deal.offers_fresh or offers_fetched)
