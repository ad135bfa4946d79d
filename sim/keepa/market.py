"""The deals Keepa knows about: a backlog at the start, then Poisson arrivals.

Every product is drawn from the run's seed: its prices (so that a known share
passes the seed's profitability filter), its sales rank, its offer count
(which sets what an ``offers`` call really costs) and its buy-box seller.
Arrivals are drawn lazily up to the time asked for, in one fixed sequence,
so how often the market is looked at never changes what it contains.

The deals live as numpy rows (`columns`); each sort order is built on first
use and then kept up to date (`order`), so building the market, an arrival
and a ``/deal`` page each cost what they touch, not the market's size.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .columns import Draws, Rows, asin_of, keepa_minutes, row_of
from .order import Order, Snapshot


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


class Deals(Mapping):
    """``market.deals``: ASIN -> `Deal` over the rows visible so far. A deal is
    made from its row when first asked for, then kept."""

    def __init__(self, market: DealMarket):
        self.market = market
        self._made: dict[str, Deal] = {}

    def __getitem__(self, asin: str) -> Deal:
        deal = self._made.get(asin)
        if deal is None:
            row = row_of(asin)
            if row is None or row >= self.market.size:
                raise KeyError(asin)
            deal = self._make(asin, self.market.rows.row(row).item())
        return deal

    def load(self, asins: list[str], rows: list[int]) -> None:
        """Make the deals of a ``/deal`` page in one pass over their rows: the page is
        rendered next, and its products are what the collector asks for."""
        made = self._made
        missing = [i for i, asin in enumerate(asins) if asin not in made]
        if missing:
            for i, values in zip(missing, self.market.rows.take([rows[i] for i in missing])):
                self._make(asins[i], values)

    def _make(self, asin: str, values: tuple) -> Deal:
        rank, created, sell, buy, pages, offers_fresh, rating_fresh, seller, _ = values
        deal = self._made[asin] = Deal(asin, rank, created, sell, buy, pages, offers_fresh,
                                       rating_fresh, f"A{seller:07d}")
        return deal

    def __contains__(self, asin: object) -> bool:
        row = row_of(asin) if isinstance(asin, str) else None
        return row is not None and row < self.market.size

    def __iter__(self) -> Iterator[str]:
        return map(asin_of, range(self.market.size))

    def __len__(self) -> int:
        return self.market.size


class DealMarket:
    """The deals: `size` rows visible now (the backlog, then arrivals up to the last
    `advance`), more drawn ahead in blocks; the sort orders built so far."""

    def __init__(self, settings: MarketSettings, seed: int, start_ms: int):
        self.settings = settings
        self.start_ms = start_ms
        self.rows = Rows(Draws(settings, seed, "backlog").backlog(start_ms))
        self.size = self.rows.size
        self.deals = Deals(self)
        self.arrived_ms: dict[str, int] = {}  # arrivals after the start only
        self._orders: dict[int, Order] = {}  # by sort key: 1 to 4
        self._arrivals = Draws(settings, seed, "arrivals") if settings.arrivals_per_hour else None
        self._next_ms = 2**62  # when the next arrival comes
        if self._arrivals is not None:
            self.rows.extend(self._arrivals.arrivals(start_ms))
            self._next_ms = int(self.rows.arrivals["created_ms"][0])

    def advance(self, now_ms: int) -> None:
        """Bring in every arrival up to `now_ms`."""
        if now_ms < self._next_ms:
            return
        rows, first = self.rows, self.size
        came = was = first - len(rows.backlog)  # arrivals in: before; came counts on
        while True:
            created = rows.arrivals["created_ms"]
            came += int(created[came:rows.drawn].searchsorted(now_ms, "right"))
            if came < rows.drawn:
                break
            rows.extend(self._arrivals.arrivals(int(created[came - 1])))
        self._next_ms = int(rows.arrivals["created_ms"][came])
        self.size = end = first + came - was
        for row, ms in enumerate(rows.arrivals["created_ms"][was:came].tolist(), first):
            self.arrived_ms[asin_of(row)] = ms
        for kind, order in self._orders.items():
            order.add(self.rows.keys(kind, first, end).tolist(), first)

    def snapshot(self, sort_type: int) -> Snapshot:
        """The deal list now, in a ``sortType``'s order: 1 newest, 2 largest price drop,
        3 (or unset) best sales rank, 4 largest drop in percent; negative inverts 2 to 4.
        Each order is sorted on first use, then kept up to date as deals arrive."""
        kind = abs(sort_type) or 3
        order = self._orders.get(kind)
        if order is None:
            order = self._orders[kind] = Order(self.rows.keys(kind, 0, self.size))
        return Snapshot(self, order, kind, backwards=sort_type == 1 or sort_type < 0)

    def listing(self, sort_type: int) -> list[str]:
        """The whole list now, in a ``sortType``'s order (O(n): for tests and quick looks)."""
        return self.snapshot(sort_type).asins(0, self.size)

    def seller(self, seller_id: str) -> dict | None:
        """The seller object, or None for an id Keepa does not know."""
        number = seller_id[1:]
        if seller_id[:1] != "A" or len(number) != 7 or not number.isdigit() \
                or int(number) >= self.settings.sellers:
            return None
        return {"sellerId": seller_id, "sellerName": f"Seller {seller_id}"}
