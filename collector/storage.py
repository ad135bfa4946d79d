"""Where the collector keeps deals and its progress.

`Storage` is the interface every backend implements; a chunk's deals and the
cursor advance are one `commit`, so a crash never splits them. `MemoryStorage`
serves the simulator; SQLite (`collector.live.sqlite`) serves ``collector live``.
A deal is seen again when a store, a refresh or a /deal page the collector
reads shows it; the janitor (`collector.janitor`) deletes the deals not seen
for a while, as the seed's did.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol


@dataclass(frozen=True)
class StoredDeal:
    """A deal the collector keeps. `last_update` is in Keepa minutes."""

    asin: str
    source: str  # "backfill" or "recent"
    last_update: int
    title: str = ""
    buy_cents: int = -1
    sell_cents: int = -1
    seller_id: str = ""


@dataclass(frozen=True, order=True)
class Cursor:
    """Where the backfiller resumes: the deal-list page and the index in it (ordered as
    positions in the list)."""

    page: int = 0
    index: int = 0


class Storage(Protocol):
    def known(self, asins: Iterable[str]) -> set[str]:
        """Which of `asins` are stored already."""

    def commit(self, deals: Sequence[StoredDeal], now: float, *, cursor: Cursor | None = None,
               watermark: int | None = None) -> None:
        """Store `deals` (upsert by ASIN) and move the cursor/watermark, atomically."""

    def refresh(self, rows: Sequence[tuple[str, int, int]], now: float, *,
                offers: bool) -> None:
        """New prices ``(asin, buy_cents, sell_cents)`` for stored deals, fetched at `now`
        (with their offers, if `offers`); a refresh is not a second store."""

    def stale(self, now: float, min_age_s: float, limit: int) -> list[tuple[str, float]]:
        """Up to `limit` stored deals whose data is at least `min_age_s` old, oldest first,
        as ``(asin, age of their offers in seconds)``."""

    def seen(self, asins: Iterable[str], now: float) -> None:
        """Those of `asins` that are stored were seen again at `now` (listed on a /deal
        page the collector read); a store or a refresh counts as seen too."""

    def expire(self, now: float, ttl_s: float) -> list[str]:
        """Delete the stored deals last seen more than `ttl_s` before `now`; their ASINs."""

    def cursor(self) -> Cursor: ...

    def watermark(self) -> int | None: ...

    def count(self) -> int: ...


class MemoryStorage:
    """Dict-backed storage: a commit is one Python call, so it is atomic here.

    `fetched_at` holds when each deal's data was last fetched, oldest first
    (every store and refresh moves a deal to the end), so the stalest are at hand;
    `last_seen` likewise when each was last stored, refreshed or listed, so the
    janitor's expired deals are at the front.
    """

    def __init__(self) -> None:
        self.deals: dict[str, StoredDeal] = {}
        self.first_seen: dict[str, float] = {}
        self.fetched_at: OrderedDict[str, float] = OrderedDict()
        self.offers_at: dict[str, float] = {}
        self.last_seen: OrderedDict[str, float] = OrderedDict()
        self._cursor = Cursor()
        self._watermark: int | None = None
        self.commits = 0

    def known(self, asins: Iterable[str]) -> set[str]:
        return {a for a in asins if a in self.deals}

    def commit(self, deals: Sequence[StoredDeal], now: float, *, cursor: Cursor | None = None,
               watermark: int | None = None) -> None:
        for deal in deals:
            self.first_seen.setdefault(deal.asin, now)
            self.deals[deal.asin] = deal
            self._fetched(deal.asin, now, offers=True)
        if cursor is not None:
            self._cursor = cursor
        if watermark is not None:
            self._watermark = watermark
        self.commits += 1

    def refresh(self, rows: Sequence[tuple[str, int, int]], now: float, *,
                offers: bool) -> None:
        for asin, buy, sell in rows:
            deal = self.deals.get(asin)
            if deal is not None:  # else the janitor deleted it while the call was out
                self.deals[asin] = replace(deal, buy_cents=buy, sell_cents=sell)
                self._fetched(asin, now, offers)

    def stale(self, now: float, min_age_s: float, limit: int) -> list[tuple[str, float]]:
        out = []
        for asin, at in self.fetched_at.items():
            if now - at < min_age_s or len(out) >= limit:
                break
            out.append((asin, now - self.offers_at[asin]))
        return out

    def seen(self, asins: Iterable[str], now: float) -> None:
        last_seen = self.last_seen
        for asin in asins:
            if asin in last_seen:
                last_seen[asin] = now
                last_seen.move_to_end(asin)

    def expire(self, now: float, ttl_s: float) -> list[str]:
        gone = []
        for asin, at in self.last_seen.items():
            if now - at <= ttl_s:
                break
            gone.append(asin)
        for asin in gone:
            for table in (self.deals, self.first_seen, self.fetched_at, self.offers_at,
                          self.last_seen):
                del table[asin]
        return gone

    def _fetched(self, asin: str, now: float, offers: bool) -> None:
        self.fetched_at[asin] = now
        self.fetched_at.move_to_end(asin)
        self.last_seen[asin] = now
        self.last_seen.move_to_end(asin)
        if offers:
            self.offers_at[asin] = now

    def cursor(self) -> Cursor:
        return self._cursor

    def watermark(self) -> int | None:
        return self._watermark

    def count(self) -> int:
        return len(self.deals)
