"""The market's deals as rows of one numpy structured array, drawn vectorised.

Row `i` is the deal with ASIN ``asin_of(i)``: the backlog in order of creation,
then the arrivals in order. Drawing a whole backlog is a handful of numpy calls
(a 100k backlog in milliseconds), where drawing deal by deal in Python was the
simulator's largest cost.

Every column is drawn from its own random stream, so a knob that changes one
column (say ``market.roughness_min`` or ``market.rating_fresh_share``) leaves
every other draw as it was, and runs with and without it stay paired. Arrivals
are drawn in blocks of `ARRIVAL_BLOCK` from streams of their own: the sequence
never depends on how often the market is looked at, nor on the backlog's size.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from collector.keepa import KEEPA_EPOCH_MINUTES

if TYPE_CHECKING:
    from .market import MarketSettings

MINUTE_MS = 60_000
BACKLOG_SPAN_MS = 12 * 3_600_000  # the deal list shows products updated within 12 h
ARRIVAL_BLOCK = 1024
ROW = np.dtype([("rank", np.int64), ("created_ms", np.int64), ("sell", np.int64),
                ("buy", np.int64), ("offer_pages", np.int64), ("offers_fresh", np.bool_),
                ("rating_fresh", np.bool_), ("seller", np.int64), ("noise", np.float64)])
# one stream per knob's column; "prices" draws four uniforms a deal (two branches, sell, ROI)
STREAMS = ("rank", "prices", "offer_pages", "offers_fresh", "rating_fresh", "seller", "noise")


def keepa_minutes(epoch_ms):
    """Keepa's time (minutes since its epoch) of epoch milliseconds, or of an array of them."""
    return epoch_ms // MINUTE_MS - KEEPA_EPOCH_MINUTES


def asin_of(row: int) -> str:
    return f"B0{row:08X}"


def row_of(asin: str) -> int | None:
    """The row an ASIN names, or None if it is not one the market could have made."""
    if len(asin) != 10 or asin[:2] != "B0":
        return None
    try:
        row = int(asin[2:], 16)
    except ValueError:
        return None
    return row if asin_of(row) == asin else None


def stream(seed: int, name: str) -> np.random.Generator:
    """The run's random stream called `name`: the same seed and name, the same draws."""
    digest = hashlib.sha256(f"{seed}/market/{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


class Draws:
    """The random streams of one part of the market (``backlog`` or ``arrivals``)."""

    def __init__(self, settings: MarketSettings, seed: int, part: str):
        self.settings = settings
        self.rngs = {name: stream(seed, f"{part}/{name}") for name in STREAMS}
        self.times = stream(seed, f"{part}/times")

    def rows(self, created_ms: np.ndarray) -> np.ndarray:
        """One deal per creation time, every other column drawn; prices so that a
        `survivor_share` passes the seed's filter (sell >= $12, ROI >= 20 %)."""
        s, g, n = self.settings, self.rngs, len(created_ms)
        rows = np.empty(n, ROW)
        rows["created_ms"] = created_ms
        rows["rank"] = g["rank"].integers(1, 2_000_001, n)
        u = g["prices"].random((4, n))
        survivor = u[0] < s.survivor_share
        cheap = ~survivor & (u[1] < 0.5)
        sell_low = np.where(survivor, 1500, np.where(cheap, 300, 1200))
        sell_high = np.where(survivor, 8000, np.where(cheap, 1150, 8000))
        sell = sell_low + (u[2] * (sell_high - sell_low + 1)).astype(np.int64)
        roi_low = np.where(survivor, 0.25, np.where(cheap, 0.2, -0.2))
        roi_high = np.where(survivor, 1.0, np.where(cheap, 1.0, 0.15))
        roi = roi_low + u[3] * (roi_high - roi_low)
        rows["sell"] = sell
        rows["buy"] = np.maximum(1, np.rint(sell / (1 + roi)))
        rows["offer_pages"] = np.where(g["offer_pages"].random(n) < s.many_offers_share, 2, 1)
        rows["offers_fresh"] = g["offers_fresh"].random(n) < s.offers_fresh_share
        rows["rating_fresh"] = g["rating_fresh"].random(n) < s.rating_fresh_share
        rows["seller"] = g["seller"].integers(0, s.sellers, n)
        rows["noise"] = (g["noise"].random(n) * 2 - 1) * s.roughness_min
        return rows

    def backlog(self, start_ms: int) -> np.ndarray:
        """The deals listed at the start, updated within the 12 h before it."""
        offsets = self.times.integers(0, BACKLOG_SPAN_MS, self.settings.backlog)
        return self.rows(np.sort(start_ms - offsets))

    def arrivals(self, after_ms: int) -> np.ndarray:
        """The next `ARRIVAL_BLOCK` Poisson arrivals after `after_ms` (at least 1 ms apart)."""
        mean_ms = 3_600_000 / self.settings.arrivals_per_hour
        gaps = np.maximum(1, np.rint(self.times.exponential(mean_ms, ARRIVAL_BLOCK)))
        return self.rows(after_ms + np.cumsum(gaps.astype(np.int64)))


class Rows:
    """The drawn rows: the backlog's array, never copied, then the arrivals' array,
    whose capacity doubles, so appending a block costs O(block) amortised however
    large the backlog."""

    def __init__(self, backlog: np.ndarray):
        self.backlog = backlog
        self.arrivals = np.empty(0, ROW)
        self.drawn = 0  # arrivals drawn so far (the rest of `arrivals` is spare capacity)

    @property
    def size(self) -> int:
        return len(self.backlog) + self.drawn

    def visible(self, size: int) -> np.ndarray:
        """The first `size` rows as one array (a copy once arrivals have come)."""
        first = len(self.backlog)
        if size <= first:
            return self.backlog[:size]
        return np.concatenate([self.backlog, self.arrivals[:size - first]])

    def row(self, row: int) -> np.void:
        first = len(self.backlog)
        return self.backlog[row] if row < first else self.arrivals[row - first]

    def take(self, rows: list[int]) -> list[tuple]:
        """The values of `rows`, each a tuple in `ROW`'s order."""
        first, at = len(self.backlog), np.asarray(rows)
        if at.max() < first:
            return self.backlog[at].tolist()
        out = np.empty(len(at), ROW)
        early = at < first
        out[early] = self.backlog[at[early]]
        out[~early] = self.arrivals[at[~early] - first]
        return out.tolist()

    def extend(self, block: np.ndarray) -> None:
        end = self.drawn + len(block)
        if end > len(self.arrivals):
            grown = np.empty(max(end, 2 * len(self.arrivals)), ROW)
            grown[:self.drawn] = self.arrivals[:self.drawn]
            self.arrivals = grown
        self.arrivals[self.drawn:end] = block
        self.drawn = end

    def keys(self, kind: int, lo: int, hi: int) -> np.ndarray:
        """Rows `lo` to `hi`'s sort keys, ascending = the list's order for ``sortType``
        `kind` (1 newest reads it backwards)."""
        first = len(self.backlog)
        if hi <= first:
            return sort_keys(kind, self.backlog[lo:hi])
        arrived = sort_keys(kind, self.arrivals[max(lo - first, 0):hi - first])
        return arrived if lo >= first else np.concatenate(
            [sort_keys(kind, self.backlog[lo:]), arrived])


def sort_keys(kind: int, rows: np.ndarray) -> np.ndarray:
    """1 lastUpdate plus the roughness noise, 2 the price change (most negative
    first), 3 the sales rank, 4 the change in percent; as float64."""
    if kind == 1:
        return keepa_minutes(rows["created_ms"]) + rows["noise"]
    if kind == 3:
        return rows["rank"].astype(np.float64)
    drop = (rows["buy"] - rows["sell"]).astype(np.float64)
    return drop if kind == 2 else drop / rows["sell"]
