"""A deal list's sort order, kept up to date, and the snapshots pages are read from.

An `Order` holds the market's rows ascending by ``(key, row)``: the rows there
were when it was built, sorted once by numpy, and a `SortedList` of the rows
that arrived since. Reading positions ``lo`` to ``hi`` finds where they fall in
the merge of the two (a binary search) and merges only that stretch, so a page
costs O(page + log² n) whatever the market's size, and an arrival O(log n).

A `Snapshot` is the order as of its creation (Keepa caches a query's result
for 120 s): the rows that arrived after it are still in the live order but are
skipped when its pages are read, which costs O(page + arrivals since).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from sortedcontainers import SortedList

from .columns import asin_of

if TYPE_CHECKING:
    from .market import Deal, DealMarket

SCAN = 1000  # rows read at a time when a filter picks the results


class Order:
    """Rows ascending by ``(key, row)``: a sorted base and the arrivals since."""

    def __init__(self, keys: np.ndarray):
        self.base_rows = stable_argsort(keys)
        self.base_keys = keys[self.base_rows]
        self.arrivals = SortedList()  # (key, row); every row here is above every base row

    def __len__(self) -> int:
        return len(self.base_rows) + len(self.arrivals)

    def add(self, keys: list[float], first_row: int) -> None:
        self.arrivals.update(zip(keys, range(first_row, first_row + len(keys))))

    def position(self, key: float, row: int) -> int:
        """Where an arrived row stands (it sorts after base rows of an equal key)."""
        return (self.arrivals.bisect_left((key, row))
                + int(np.searchsorted(self.base_keys, key, "right")))

    def rows(self, lo: int, hi: int) -> list[int]:
        """The rows at positions `lo` to `hi` (exclusive), in ascending order."""
        lo, hi = max(lo, 0), min(hi, len(self))
        if lo >= hi:
            return []
        arrivals, base_keys = self.arrivals, self.base_keys
        if not arrivals:
            return self.base_rows[lo:hi].tolist()
        # low: how many arrivals stand before position lo (from lo - len(base) to lo)
        low, high = max(0, lo - len(base_keys)), min(len(arrivals), lo)
        while low < high:
            mid = (low + high) // 2
            if mid + int(np.searchsorted(base_keys, arrivals[mid][0], "right")) < lo:
                low = mid + 1
            else:
                high = mid
        want, b = hi - lo, lo - low
        keys = base_keys[b:b + want].tolist()
        rows = self.base_rows[b:b + want].tolist()
        came = arrivals[low:low + want]
        out: list[int] = []
        i = j = 0
        while len(out) < want:
            if j < len(came) and (i == len(keys) or came[j][0] < keys[i]):
                out.append(came[j][1])
                j += 1
            else:
                out.append(rows[i])
                i += 1
        return out


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """The rows in ascending order of their keys, ties by row: numpy's (vectorised,
    unstable) quicksort, then one more sort of (run of equal keys, row) packed
    into an int64. A third of a stable argsort's time on a large market."""
    order = np.argsort(keys)
    runs = np.zeros(len(keys), np.int64)
    ranked = keys[order]
    np.cumsum(ranked[1:] != ranked[:-1], out=runs[1:])
    return np.sort((runs << 32) | order) & 0xFFFF_FFFF


class Snapshot:
    """A deal list as of its creation: the first `size` rows in `order`, read
    forwards or (`backwards`) from the end."""

    def __init__(self, market: DealMarket, order: Order, kind: int, backwards: bool):
        self.market, self.order, self.kind, self.backwards = market, order, kind, backwards
        self.size = market.size  # rows from here on arrived after the snapshot
        last = order.rows(len(order) - 1, len(order))  # the snapshot's greatest row
        self.top = market.rows.keys(kind, last[0], last[0] + 1)[0] if last else -np.inf
        self._kept: list[str] = []  # the results a filter kept, in order ...
        self._scanned = 0  # ... from this many positions of the list

    def asins(self, lo: int, hi: int, keep: Callable[[Deal], bool] | None = None) -> list[str]:
        """Results `lo` to `hi` (exclusive) of the list, or of the deals `keep` accepts."""
        if keep is None:
            rows = self._rows(lo, hi)
            asins = [asin_of(row) for row in rows]
            self.market.deals.load(asins, rows)
            return asins
        deals = self.market.deals
        while len(self._kept) < hi and self._scanned < self.size:
            chunk = self._rows(self._scanned, self._scanned + SCAN)
            self._scanned += SCAN
            self._kept += [a for a in map(asin_of, chunk) if keep(deals[a])]
        return self._kept[lo:hi]

    def _rows(self, lo: int, hi: int) -> list[int]:
        lo, hi = max(lo, 0), min(hi, self.size)
        if lo >= hi:
            return []
        if self.backwards:
            lo, hi = self.size - hi, self.size - lo
        rows = self._ascending(lo, hi)
        return rows[::-1] if self.backwards else rows

    def _ascending(self, lo: int, hi: int) -> list[int]:
        """Snapshot positions `lo` to `hi` in the live order, skipping later arrivals."""
        size, now = self.size, self.market.size
        if now == size:
            return self.order.rows(lo, hi)
        keys = self.market.rows.keys(self.kind, size, now)
        if keys.min() >= self.top:  # every later arrival sorts after the snapshot's rows
            return self.order.rows(lo, hi)  # (on a tie, by its greater row): newest first
        keys = keys.tolist()
        later = sorted(self.order.position(k, row) for row, k in enumerate(keys, size))
        start = lo
        for position in later:  # the live position of the snapshot's lo-th row
            if position > start:
                break
            start += 1
        end = start + (hi - lo) + sum(1 for p in later if p >= start)
        return [row for row in self.order.rows(start, end) if row < size][:hi - lo]
