"""The bound: the most deals an hour that the plan, the market and the in-flight limit allow.

In the spirit of the roofline model, the bound is the least of three
ceilings, each what one resource alone would allow over the run's H hours,
and `bound_by` names the one that binds:

    bound   = min(market, tokens, latency)                          deals/hour
    market  = P / H
    tokens  = (B0 + G - D + F) / c / H
    latency = M * 3600 / t

    c = (c_page + min(c_peek + s * c_full, c_full)) / s + c_seller    tokens a stored deal
    t = (t_page + min(t_peek + s * t_full, t_full)) / s + t_seller    lane-seconds a stored deal

- P: the deals that pass the collector's filter and that its queries can reach:
  a query lists at most 10,000 deals, so of the deals listed at the start only
  those among the first 10,000 in an order the config reads (sales rank for
  the backfiller, ``recent_sort`` for the recent run; later arrivals only push
  them down), plus every deal that arrives during the run. s is the share of
  the deals the run examined that it stored (before it stores any: the share of
  the market's deals that pass).
- B0: the initial balance; G: the refill the server generated; D: what the cap
  must destroy before the earliest possible charge (the server charges a call
  when it completes, and none can complete before a /deal page's shortest
  processing time); F: the deficit the run ended in (Keepa admits a call while
  the balance is positive and charges it in full, so the last calls in flight
  can take the balance below zero: tokens spent too).
- c: the fewest tokens a stored deal can cost, for the data the config requires
  it to carry (its full fetch's parameters, its seller lookup), at the mock's
  actual prices for this market's deals, everything else at its cheapest: a
  /deal page per 150 deals (c_page = 5/150), a peek that reads only what the
  filter reads (stats, no history, no offers, no rating: c_peek) unless fetching
  everything in full is cheaper, no wasted pages, no triggered runs. c_full is
  the mean price of the full fetch over the deals the run stored (before it
  stores any: over the passing deals), their offers not fetched before. With
  ``seller_lookup``, c_seller is a token for each distinct buy-box seller of
  those deals, shared among them (Keepa charges a seller once a call). Prices
  are asked of the mock's own `product_cost` with the collector's own query
  parameters. Priced on the deals the run really bought, the ceiling holds for
  that run, not only on average: meeting cheaper deals than the market's mean
  cannot carry a run past it.
- t: the same path in seconds of processing time, from the mock's latency
  model (`MockKeepa.mean_latency_s`), each call carrying b ASINs (the
  config's largest batch); M = ``max_in_flight`` calls run at once.

The run's own ``tokens_per_deal`` (tokens charged per deal stored) sits beside
the bound's c, so a user sees what their config wastes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from collector.client import product_params
from collector.config import Config
from collector.keepa import DEAL_PAGE_SIZE, DEAL_REACH, SORT_NEWEST, SORT_SALES_RANK
from collector.pipeline import full_query, peek_query, profitable
from sim.keepa import MockKeepa
from sim.keepa.columns import asin_of, row_of, sort_keys
from sim.keepa.costs import DEAL_PAGE_COST, product_cost

RESOURCES = ("market", "tokens", "latency")


def bound(config: Config, server: MockKeepa, horizon_s: float, stored: Sequence[str] = (),
          examined: int = 0) -> dict:
    """The bound's figures for a run of `config` against `server` that lasted `horizon_s`,
    which `examined` deals and stored those in `stored` (see `_deals_bought`)."""
    market, bucket = server.market, server.bucket
    hours = horizon_s / 3600
    rows = market.rows.visible(market.size)
    passes = profitable(config, rows["sell"], rows["buy"])
    passing, share = _deals_bought(rows, passes, stored, examined)
    supply = int((passes & _reachable(config, rows, len(market.rows.backlog))).sum())
    batch = max(config.peek_batch_at(bucket.rate), config.recent_batch_size)
    # a product's price does not depend on how many share its call: price one
    full = server.parse_product(product_params(["B0"], **full_query(config)))
    peek = server.parse_product(product_params(
        ["B0"], **{**peek_query(config), "offers": 0, "rating": False}))
    c_full = _prices(market, rows, passing, full)
    c_peek = _prices(market, rows, passing[:1], peek)
    # Keepa charges a seller once a call however many deals share it: at the fewest,
    # each distinct seller is looked up once
    c_seller = (len(np.unique(rows["seller"][passing])) / len(passing)
                if config.seller_lookup and len(passing) else 0.0)
    tokens_per_deal = _per_deal(DEAL_PAGE_COST / DEAL_PAGE_SIZE, c_peek, c_full, c_seller, share)
    lane_s = _per_deal(
        server.mean_latency_s("deal") / DEAL_PAGE_SIZE,
        server.mean_latency_s("product", batch) / batch,
        server.mean_latency_s("offers" if full.offers else "product", batch) / batch,
        server.mean_latency_s("seller") / config.seller_batch_size if config.seller_lookup
        else 0.0, share)
    tokens = bucket.initial + bucket.generated - _destroyed(server) + max(0.0, -bucket.balance)
    ceilings = {
        "market": supply / hours,
        "tokens": tokens / tokens_per_deal / hours,
        "latency": config.max_in_flight * 3600 / lane_s if lane_s else math.inf,
    }
    bound_by = min(RESOURCES, key=ceilings.__getitem__)
    return {"bound_deals_per_hour": ceilings[bound_by], "bound_by": bound_by,
            "bound_tokens_per_deal": tokens_per_deal,
            **{f"bound_{name}_per_hour": ceilings[name] for name in RESOURCES}}


def bound_figures(summary: dict, figures: dict) -> dict:
    """The bound's figures beside the run's own: how far the run is from the bound, and
    the tokens it spent per deal stored (None when it stored none)."""
    stored = summary["deals_stored"]
    return {**figures, "fraction_of_bound": summary["deals_per_hour"]
            / figures["bound_deals_per_hour"] if figures["bound_deals_per_hour"] else 0.0,
            "tokens_per_deal": summary["tokens_consumed"] / stored if stored else None}


def _deals_bought(rows: np.ndarray, passes: np.ndarray, stored: Sequence[str],
                  examined: int) -> tuple[np.ndarray, float]:
    """The deals whose prices set c, and the pass share s: those the run stored and the
    share of the deals it examined that it stored, once it stored some; else the
    market's passing deals and their share."""
    if stored and examined:
        chosen = np.fromiter((row_of(asin) for asin in stored), np.int64, len(stored))
        return chosen, min(1.0, len(stored) / examined)
    passing = np.flatnonzero(passes)
    return passing, len(passing) / len(rows) if len(rows) else 0.0


def _reachable(config: Config, rows: np.ndarray, backlog: int) -> np.ndarray:
    """Which rows the collector's queries can ever list: every arrival, and the backlog
    deals among the first `DEAL_REACH` at the start in an order the config reads (later
    arrivals only push them down). Ties at the edge count as reachable."""
    mask = np.zeros(len(rows), bool)
    mask[backlog:] = True
    if backlog <= DEAL_REACH:
        mask[:backlog] = True
        return mask
    for sort in {SORT_SALES_RANK, config.recent_sort}:
        keys = sort_keys(abs(sort), rows[:backlog])
        if sort == SORT_NEWEST or sort < 0:  # these orders read the keys backwards
            keys = -keys
        edge = np.partition(keys, DEAL_REACH - 1)[DEAL_REACH - 1]
        mask[:backlog] |= keys <= edge
    return mask


def _per_deal(page: float, peek: float, full: float, seller: float, share: float) -> float:
    """Per stored deal: a page share and a peek for each of the 1/share deals examined,
    then the full fetch (or the full fetch of all of them, if that is cheaper), and the
    seller lookup."""
    if share <= 0:
        return math.inf
    return (page + min(peek + share * full, full)) / share + seller


def _prices(market, rows: np.ndarray, chosen: np.ndarray, query) -> float:
    """The mean price the mock asks for `query` over the `chosen` rows.

    A price depends on a deal only through its offer pages and whether its offers
    and its rating are fresh, so each distinct combination is priced once."""
    if not len(chosen):
        return 0.0
    columns = rows[chosen]
    codes = ((columns["offer_pages"] - 1) * 4 + columns["offers_fresh"] * 2
             + columns["rating_fresh"])  # the combination, as one small integer
    counts = np.bincount(codes)
    present = np.flatnonzero(counts)
    examples = [int(chosen[np.argmax(codes == code)]) for code in present]  # a deal of each
    prices = np.array([product_cost(market.deals[asin_of(row)], query) for row in examples])
    counts = counts[present]
    return float((prices * counts).sum() / counts.sum())


def _destroyed(server: MockKeepa) -> float:
    """Refill the cap destroys before any call can have been charged: the server charges
    a call when it completes, and none completes before a /deal page could."""
    bucket, start = server.bucket, server.start_ms
    earliest = start + server.shortest_latency_ms("deal")
    if bucket.continuous:
        gained = bucket.net_rate * (earliest - start) / 60_000
    else:
        gained = bucket.net_rate * bucket.ticks(start, earliest)
    return max(0.0, min(gained, bucket.initial + gained - bucket.cap))
