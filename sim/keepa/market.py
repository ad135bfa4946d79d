"""The deals Keepa knows about: a backlog at the start, then Poisson arrivals.

Every product is drawn from the run's seed: its prices (so that a known share
passes the seed's profitability filter), its sales rank, its offer count
(which sets what an ``offers`` call really costs) and its buy-box seller.
Arrivals are drawn lazily up to the time asked for, in one fixed sequence,
so how often the market is looked at never changes what it contains.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass

from collector.client import KEEPA_EPOCH_MINUTES

MINUTE_MS = 60_000
BACKLOG_SPAN_MS = 12 * 3_600_000  # the deal list shows products updated within 12 h


def keepa_minutes(epoch_ms: int) -> int:
    return epoch_ms // MINUTE_MS - KEEPA_EPOCH_MINUTES


@dataclass(frozen=True)
class MarketSettings:
    """The market's knobs (``--set market.KEY=VALUE``)."""

    backlog: int = 5000
    arrivals_per_hour: float = 30.0
    survivor_share: float = 0.3  # share passing the seed filter (sell >= $12, ROI >= 20 %)
    many_offers_share: float = 0.25  # products with more than 10 offers (2 offer pages)
    offers_fresh_share: float = 0.2  # offers refreshed lately for someone else: flat 5
    rating_fresh_share: float = 0.3  # rating=1 costs +1 for these
    roughness_min: float = 0.0  # how far the newest-first order strays, Keepa minutes
    sellers: int = 500


@dataclass(frozen=True, slots=True)
class Deal:
    asin: str
    rank: int
    created_ms: int
    sell: int
    buy: int
    offer_pages: int
    offers_fresh: bool
    rating_fresh: bool
    seller: str

    @property
    def last_update(self) -> int:
        return keepa_minutes(self.created_ms)

    def deal_object(self) -> dict:
        return {"asin": self.asin, "title": f"Product {self.asin}",
                "lastUpdate": self.last_update, "creationDate": self.last_update,
                "current": [-1, self.buy, -1, self.rank]}

    def product_object(self) -> dict:
        return {"asin": self.asin, "title": f"Product {self.asin}",
                "stats": {"current": [-1, self.buy, -1, self.rank],
                          "avg90": [-1, self.sell, -1, self.rank]},
                "buyBoxSellerId": self.seller}


class DealMarket:
    def __init__(self, settings: MarketSettings, seed: int, start_ms: int):
        self.settings = settings
        self.rng = random.Random(f"{seed}/market")
        self.start_ms = start_ms
        self.deals: dict[str, Deal] = {}
        self.by_rank: list[tuple[int, str]] = []
        self.by_update: list[tuple[float, str]] = []
        self.by_drop: list[tuple[int, str]] = []  # largest price drop first
        self.by_percent: list[tuple[float, str]] = []  # largest drop in percent first
        self.arrived_ms: dict[str, int] = {}  # arrivals after the start only
        backlog = sorted(start_ms - self.rng.randrange(BACKLOG_SPAN_MS)
                         for _ in range(settings.backlog))
        for created in backlog:
            self._add(created)
        self._next_ms = start_ms + self._gap()

    def _gap(self) -> int:
        per_ms = self.settings.arrivals_per_hour / 3_600_000
        return max(1, round(self.rng.expovariate(per_ms))) if per_ms > 0 else 2**62

    def advance(self, now_ms: int) -> None:
        """Bring in every arrival up to `now_ms`."""
        while self._next_ms <= now_ms:
            self.arrived_ms[self._add(self._next_ms).asin] = self._next_ms
            self._next_ms += self._gap()

    def _add(self, created_ms: int) -> Deal:
        s, r = self.settings, self.rng
        if r.random() < s.survivor_share:
            sell, roi = r.randint(1500, 8000), r.uniform(0.25, 1.0)
        elif r.random() < 0.5:
            sell, roi = r.randint(300, 1150), r.uniform(0.2, 1.0)
        else:
            sell, roi = r.randint(1200, 8000), r.uniform(-0.2, 0.15)
        deal = Deal(
            asin=f"B0{len(self.deals):08X}",
            rank=r.randint(1, 2_000_000),
            created_ms=created_ms,
            sell=sell,
            buy=max(1, round(sell / (1 + roi))),
            offer_pages=2 if r.random() < s.many_offers_share else 1,
            offers_fresh=r.random() < s.offers_fresh_share,
            rating_fresh=r.random() < s.rating_fresh_share,
            seller=f"A{r.randrange(s.sellers):07d}",
        )
        noise = r.uniform(-s.roughness_min, s.roughness_min) if s.roughness_min else 0.0
        self.deals[deal.asin] = deal
        bisect.insort(self.by_rank, (deal.rank, deal.asin))
        bisect.insort(self.by_update, (deal.last_update + noise, deal.asin))
        bisect.insort(self.by_drop, (deal.buy - deal.sell, deal.asin))
        bisect.insort(self.by_percent, ((deal.buy - deal.sell) / deal.sell, deal.asin))
        return deal

    def listing(self, sort_type: int) -> list[str]:
        """The deal list in a ``sortType``'s order: 1 newest, 2 largest price drop, 3 (or
        unset) best sales rank, 4 largest drop in percent; negative inverts 2 to 4."""
        if sort_type == 1:
            return [asin for _, asin in reversed(self.by_update)]
        index = {2: self.by_drop, 4: self.by_percent}.get(abs(sort_type), self.by_rank)
        ranked = [asin for _, asin in index]
        return ranked[::-1] if sort_type < 0 else ranked

    def seller(self, seller_id: str) -> dict | None:
        """The seller object, or None for an id Keepa does not know."""
        number = seller_id[1:]
        if seller_id[:1] != "A" or len(number) != 7 or not number.isdigit() \
                or int(number) >= self.settings.sellers:
            return None
        return {"sellerId": seller_id, "sellerName": f"Seller {seller_id}"}
