"""Keepa's objects as the mock answers them: Deal, Product (with Stats, Offer), Seller.

Field names and layouts are Keepa's own (keepacom/api_backend,
``structs/Deal.java``, ``Product.java``, ``Stats.java``, ``Offer.java``,
``Seller.java``), as the community client ``keepa`` parses them: arrays in
"Price Type indexing" hold one entry per csv type (`CSV_TYPES`), -1 where
there is no value; histories are flat ``[time, value, ...]`` lists in Keepa
minutes (``[time, price, shipping, ...]`` for the ``*_SHIPPING`` types).

A market deal carries only its seeded draws: rank, prices, offer pages,
seller, creation time. Everything else an object holds is a function of those
draws, computed when an answer asks for it: categories, rating, offer count
and the shape of the price history come from `_hash` of the rank and the
creation time, so rendering draws nothing and the market's streams, and every
figure the simulator reports, stay as they were. The numbers the collector
filters on are the market's: ``stats.current[NEW]`` is the deal's buy price,
``stats.avg90[NEW]`` its sell price (every average is the price level before
the deal), and the ``NEW`` history ends at the buy price, set when the deal
was created, after a wiggle around the sell price whose cycle averages to it.

Rendering is on the simulator's hot path (150 deal objects a ``/deal`` page),
so objects and rows are copied from templates, a deal's four date-range rows
share one list, and `Objects` keeps what never changes once it is made.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from collector.keepa import (BUY_BOX_SHIPPING, COUNT_NEW, COUNT_REVIEWS, CSV_TYPES, NEW, RATING,
                             SALES)

from .columns import keepa_minutes

if TYPE_CHECKING:
    from .market import Deal
    from .server import ProductQuery

# root categories (Amazon.com's node ids and names); a product's leaf is root * 100 + 1..3
ROOT_CATEGORIES = (
    (172282, "Electronics"), (1055398, "Home & Kitchen"), (165793011, "Toys & Games"),
    (3760901, "Health & Household"), (3375251, "Sports & Outdoors"),
    (228013, "Tools & Home Improvement"), (2619533011, "Pet Supplies"), (15684181, "Automotive"),
    (1064954, "Office Products"), (2972638011, "Patio, Lawn & Garden"),
    (16310101, "Grocery & Gourmet Food"), (3760911, "Beauty & Personal Care"))
CATEGORY_NAMES = dict(ROOT_CATEGORIES)
ROOT_IDS = tuple(c for c, _ in ROOT_CATEGORIES)
HISTORY_STEP_MIN = 28 * 1440  # one price point every four weeks before the deal
WIGGLE = (3, -1, -2)  # the cycle of a history's offsets, in units (84 days); it sums to 0
UP, DOWN = max(WIGGLE), -min(WIGGLE)  # its highest and lowest offset ...
TOP, BOTTOM = WIGGLE.index(UP), WIGGLE.index(-DOWN)  # ... and where in the cycle they are
DAY_MIN = 1440

_MISSING = [-1] * len(CSV_TYPES)  # a row with no values
_UNCHANGED = [0] * len(CSV_TYPES)  # a delta row: 0 is "did not change" (Deal.java)
_NO_HISTORY = [None] * len(CSV_TYPES)


def _hash(deal: Deal) -> int:
    """32 bits fixed by the deal's seeded draws (Fibonacci hashing of rank and time)."""
    return (deal.rank * 2654435761 + deal.created_ms) & 0xFFFFFFFF


def _root(h: int) -> int:
    return ROOT_IDS[(h >> 8) % len(ROOT_IDS)]


def _leaf(h: int) -> int:
    return _root(h) * 100 + 1 + (h >> 4) % 3


def _rating(h: int) -> int:
    return 30 + (h >> 12) % 21


def root_category(deal: Deal) -> int:
    """The product's root category (Deal.rootCat, Product.rootCategory)."""
    return _root(_hash(deal))


def leaf_category(deal: Deal) -> int:
    """The one category the product is listed in (Deal.categories, Product.categories)."""
    return _leaf(_hash(deal))


def rating(deal: Deal) -> int:
    """The product's rating, 30 to 50 (3.0 to 5.0 stars), as Keepa's RATING type."""
    return _rating(_hash(deal))


def is_lowest(deal: Deal) -> bool:
    """Whether the current New price is the lowest of the history (also of 90 days:
    the history's wiggle goes through its whole cycle in 84 days)."""
    return deal.buy <= deal.sell - DOWN * _unit(deal.sell, _hash(deal))


def is_highest(deal: Deal) -> bool:
    return deal.buy >= deal.sell + UP * _unit(deal.sell, _hash(deal))


# -- /deal ----------------------------------------------------------------------------
class Objects:
    """One mock's renderer, with the parts that never change kept once made: each
    deal's Deal object (the first pages of the deal list are read again and again: a
    seed-after day serves 14,550 deal objects of 727 deals), and each product's
    offers and stats (a peek and the full fetch after it ask for the same). In process
    the answers share these, as read-only data. Past `LIMIT` entries a cache starts
    afresh, which bounds memory without changing any answer."""

    LIMIT = 20_000

    def __init__(self, sellers: int) -> None:
        self.seller_ids = tuple(f"A{n:07d}" for n in range(max(1, sellers)))
        self._deals: dict[str, dict] = {}
        self._offers: dict[tuple, list[dict]] = {}
        self._stats: dict[tuple, dict] = {}

    def deals(self, deals: list[Deal]) -> list[dict]:
        """The Deal objects of a page."""
        made = _bounded(self._deals)
        out = []
        for deal in deals:
            obj = made.get(deal.asin)
            if obj is None:
                obj = made[deal.asin] = deal_object(deal)
            out.append(obj)
        return out

    def product(self, deal: Deal, q: ProductQuery, *, now_ms: int, updated_ms: int,
                offers_ms: int | None) -> dict:
        """The Product object `q` asks for: ``stats`` only when asked; ``csv`` unless
        ``history=0`` (then null, as Keepa answers), trimmed to the last ``days``; the
        ``offers`` (seen when last fetched, `offers_ms`), ``liveOffersOrder`` and
        ``buyBoxSellerIdHistory`` with ``offers`` (the history also with ``buybox``),
        no offers if this call's fetch failed (`offers_ms` None). `updated_ms`: when
        Keepa last refreshed the product."""
        h = _hash(deal)
        created = deal.last_update
        tracked = created - (200 + (h >> 6) % 900) * DAY_MIN
        count = (deal.offer_pages - 1) * 10 + 1 + (h >> 16) % 10
        retrieved = min(count, q.offers) if q.offers and offers_ms is not None else 0
        buybox = q.buybox or retrieved > 0
        product = _PRODUCT.copy()
        asin, root = deal.asin, ROOT_IDS[(h >> 8) % len(ROOT_IDS)]
        product["asin"], product["title"] = asin, "Product " + asin
        product["rootCategory"], product["categories"] = root, [root * 100 + 1 + (h >> 4) % 3]
        product["trackingSince"] = product["listedSince"] = tracked
        product["lastUpdate"], product["lastPriceChange"] = keepa_minutes(updated_ms), created
        if q.history:
            since = keepa_minutes(now_ms) - q.days * DAY_MIN if q.days else None
            product["csv"] = _histories(deal, h, created, tracked, since, count, q.rating, buybox)
        if q.rating:
            product["lastRatingUpdate"] = created
        if q.offers:
            product["offersSuccessful"] = offers_ms is not None
        if retrieved:
            key = (asin, offers_ms, retrieved, q.stock)
            offers = _bounded(self._offers).get(key)
            if offers is None:
                offers = self._offers[key] = _offers(deal, h, retrieved, keepa_minutes(offers_ms),
                                                     q.stock, self.seller_ids)
            product["offers"], product["liveOffersOrder"] = offers, list(range(retrieved))
            if q.stock:
                product["lastStockUpdate"] = offers[0]["lastSeen"]
        if buybox:
            product["buyBoxSellerIdHistory"] = [str(tracked), self.seller_ids[
                _other_seller(int(deal.seller[1:]) + 1, h, 1, len(self.seller_ids))],
                str(created), deal.seller]
        if q.stats:
            key = (asin, retrieved, buybox)
            stats = _bounded(self._stats).get(key)
            if stats is None:
                stats = self._stats[key] = _stats(deal, h, created, tracked, count, retrieved,
                                                  buybox)
            product["stats"] = stats
        return product


def _bounded(cache: dict) -> dict:
    if len(cache) > Objects.LIMIT:
        cache.clear()
    return cache


def deal_object(deal: Deal) -> dict:
    """The Deal object of a ``/deal`` page; the four date ranges share one row each."""
    h = _hash(deal)
    minute = deal.last_update
    current = _MISSING.copy()
    current[NEW], current[SALES] = deal.buy, deal.rank
    avg = _MISSING.copy()
    avg[NEW], avg[SALES] = deal.sell, deal.rank
    delta = _UNCHANGED.copy()
    delta[NEW] = deal.sell - deal.buy
    percent = _UNCHANGED.copy()
    percent[NEW] = round(delta[NEW] * 100 / deal.sell)
    since = _MISSING.copy()
    since[NEW] = minute
    return {"asin": deal.asin, "title": f"Product {deal.asin}", "rootCat": _root(h),
            "categories": [_leaf(h)], "current": current,
            "currentSince": since, "deltaLast": delta, "delta": [delta] * 4,
            "deltaPercent": [percent] * 4, "avg": [avg] * 4, "creationDate": minute,
            "lastUpdate": minute, "lightningEnd": 0, "warehouseCondition": 0}


def deal_response(deals: list[dict]) -> dict:
    """DealResponse: the page's deals and, per root category among them, its id, name
    and count (most deals first)."""
    counts = Counter(d["rootCat"] for d in deals).most_common()
    return {"dr": deals, "categoryIds": [c for c, _ in counts],
            "categoryNames": [CATEGORY_NAMES[c] for c, _ in counts],
            "categoryCount": [n for _, n in counts]}


# -- /product -------------------------------------------------------------------------
# templates: a rendered object is a copy with the few fields that vary set
_PRODUCT = {"asin": None, "domainId": 1, "productType": 0, "title": None, "rootCategory": None,
            "categories": None, "trackingSince": None, "listedSince": None, "lastUpdate": None,
            "lastPriceChange": None, "hasReviews": True, "csv": None}
_STATS = {"current": None, "avg": None, "avg30": None, "avg90": None, "avg180": None,
          "avg365": None, "min": None, "max": None, "totalOfferCount": -2,
          "buyBoxSellerId": None, "buyBoxPrice": -2, "buyBoxShipping": -2,
          "retrievedOfferCount": -2, "offerCountFBA": -2, "offerCountFBM": -2}
_OFFER_FBM = {"offerId": None, "lastSeen": None, "sellerId": None, "offerCSV": None,
              "condition": 1, "isPrime": False, "isFBA": False, "isAmazon": False,
              "isMAP": False, "isShippable": True, "isPreorder": False, "isWarehouseDeal": False,
              "shipsFromChina": False, "isPrimeExcl": False, "minOrderQty": 1}
_OFFER_FBA = {**_OFFER_FBM, "isPrime": True, "isFBA": True}


def _stats(deal: Deal, h: int, created: int, tracked: int, count: int, retrieved: int,
           buybox: bool) -> dict:
    """Stats: the current prices, the averages (one row: the level before the deal), the
    all-time extremes of the new price and the rank (as the history has them); the buy
    box; the offer counts (the retrieved ones only when offers were)."""
    buy, sell, rank = deal.buy, deal.sell, deal.rank
    current = _MISSING.copy()
    current[NEW], current[SALES], current[COUNT_NEW] = buy, rank, count
    avg = _MISSING.copy()
    avg[NEW], avg[SALES], avg[COUNT_NEW] = sell, rank, count
    unit, rank_unit = _unit(sell, h), max(1, rank // 10)
    last = (created - tracked) // HISTORY_STEP_MIN - 1  # the last point before the deal
    at_top = tracked + (last - (last - TOP) % len(WIGGLE)) * HISTORY_STEP_MIN
    at_bottom = tracked + (last - (last - BOTTOM) % len(WIGGLE)) * HISTORY_STEP_MIN
    low, high = _NO_HISTORY.copy(), _NO_HISTORY.copy()
    low[NEW] = [created, buy] if buy <= sell - DOWN * unit else [at_bottom, sell - DOWN * unit]
    high[NEW] = [created, buy] if buy >= sell + UP * unit else [at_top, sell + UP * unit]
    low[SALES] = [at_top, max(1, rank - UP * rank_unit)]
    high[SALES] = [at_bottom, rank + DOWN * rank_unit]
    stats = _STATS.copy()
    stats["current"], stats["min"], stats["max"] = current, low, high
    stats["avg"] = stats["avg30"] = stats["avg90"] = stats["avg180"] = stats["avg365"] = avg
    stats["totalOfferCount"], stats["buyBoxSellerId"] = count, deal.seller
    if buybox:
        current[BUY_BOX_SHIPPING], avg[BUY_BOX_SHIPPING] = buy, sell
        stats["buyBoxPrice"], stats["buyBoxShipping"] = buy, 0
        stats["buyBoxIsFBA"], stats["buyBoxIsAmazon"] = True, False
    if retrieved:
        fba = (retrieved + 2) // 3  # offers 0, 3, 6, ... are FBA (see _offers)
        stats["retrievedOfferCount"], stats["lastOffersUpdate"] = retrieved, created
        stats["offerCountFBA"], stats["offerCountFBM"] = fba, retrieved - fba
    return stats


def _histories(deal: Deal, h: int, created: int, tracked: int, since: int | None, count: int,
               rating_data: bool, buybox: bool) -> list:
    """Product.csv: NEW and SALES wiggle around the deal's levels (the rank against the
    price) a point every four weeks from `tracked`, then the deal; COUNT_NEW; RATING and
    COUNT_REVIEWS with ``rating``; BUY_BOX_SHIPPING (shipping 0) with the buy box.
    Points before `since` are cut; the deal's own point always stays."""
    step = HISTORY_STEP_MIN
    points = (created - tracked) // step
    first = 0 if since is None else min(points, max(0, -(-(since - tracked) // step)))
    kept, phase = points - first + 1, first % len(WIGGLE)  # the points kept, and the deal
    times = list(range(tracked + first * step, tracked + points * step, step))
    times.append(created)
    unit, rank_unit, laps = _unit(deal.sell, h), max(1, deal.rank // 10), kept // len(WIGGLE) + 2
    new = [0] * (2 * kept)
    new[::2] = times
    new[1::2] = ([deal.sell + w * unit for w in WIGGLE] * laps)[phase:phase + kept]
    new[-1] = deal.buy
    sales = new.copy()
    sales[1::2] = ([max(1, deal.rank - w * rank_unit) for w in WIGGLE] * laps)[phase:phase + kept]
    sales[-1] = deal.rank
    csv = _NO_HISTORY.copy()
    csv[NEW], csv[SALES], csv[COUNT_NEW] = new, sales, [times[0], count]
    if rating_data:
        csv[RATING] = [created, _rating(h)]
        csv[COUNT_REVIEWS] = [created, 5 + (h >> 14) % 3000]
    if buybox:
        box = [0] * (3 * kept)
        box[::3], box[1::3] = times, new[1::2]
        csv[BUY_BOX_SHIPPING] = box
    return csv


def _offers(deal: Deal, h: int, n: int, now: int, stock: bool,
            ids: tuple[str, ...]) -> list[dict]:
    """The `n` live offers, cheapest first: the first is the buy box's (the deal's
    seller at the buy price); every third is FBA; all new, all seen at `now`."""
    buy, step, own, sellers = deal.buy, deal.buy // 40 or 1, int(deal.seller[1:]) + 1, len(ids)
    offers = []
    for i in range(n):
        if i % 3:
            offer = _OFFER_FBM.copy()
            offer["offerCSV"] = [now, buy + i * step, 499]
        else:
            offer = _OFFER_FBA.copy()
            offer["offerCSV"] = [now, buy + i * step, 0]
        offer["offerId"], offer["lastSeen"] = i, now
        offer["sellerId"] = ids[_other_seller(own, h, i, sellers)] if i else deal.seller
        if stock:
            offer["stockCSV"] = [now, 1 + (h >> (i % 16)) % 10]
        offers.append(offer)
    return offers


def _other_seller(own: int, h: int, i: int, sellers: int) -> int:
    """The seller number of offer `i` > 0: mostly not the buy box's (`own` is its
    number + 1)."""
    return (own + i + (h >> (i & 7)) % 97) % sellers


def _unit(sell: int, h: int) -> int:
    """A history's wiggle unit: 1 to 4 % of the sell price."""
    return max(1, sell * (1 + (h >> 20) % 4) // 100)


def seller_object(seller: dict, now_ms: int) -> dict:
    """The Seller object for a seller the market knows (`seller` holds its id and name):
    its rating history (MerchantCsvType RATING, RATING_COUNT), current and 30/90/365-day
    and lifetime ratings, all fixed by its id."""
    number = int(seller["sellerId"][1:])
    h = (number * 2654435761) & 0xFFFFFFFF
    now = keepa_minutes(now_ms)
    tracked = now - (300 + h % 3000) * DAY_MIN
    score, count = 80 + (h >> 8) % 21, 20 + (h >> 12) % 20000
    return {**seller, "domainId": 1, "trackedSince": tracked, "lastUpdate": now,
            "lastRatingUpdate": now, "csv": [[tracked, score - 2, now, score],
                                             [tracked, count // 2, now, count]],
            "currentRating": score, "currentRatingCount": count,
            "ratingsLast30Days": count // 100, "positiveRating": [score] * 4,
            "neutralRating": [(100 - score) // 2] * 4,
            "negativeRating": [100 - score - (100 - score) // 2] * 4,
            "ratingCount": [count // 100, count // 30, count // 8, count],
            "hasFBA": h % 2 == 0, "shipsFromChina": False}
