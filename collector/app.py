"""`Collector`: the parts wired together for one runtime.

The same object runs in the simulator and live; only the runtime, the storage
and the observer handed to it differ.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence

from .backfill import backfill
from .client import KeepaClient
from .config import Config
from .events import Observer
from .recent import Pace, recent
from .refresh import refresh
from .runtime import Runtime
from .scheduler import Scheduler
from .storage import Cursor, Storage, StoredDeal


class Collector:
    def __init__(self, runtime: Runtime, config: Config, storage: Storage,
                 observer: Observer | None = None, domain: int = 1):
        self.runtime = runtime
        self.config = config
        self.storage = storage
        self.observer = observer or Observer()
        self.client = KeepaClient(runtime, config, self.observer, domain)
        self.claimed: set[str] = set()  # ASINs examined (or being examined) by this process
        self.recent_pace = Pace()
        self.sellers_seen: dict[str, float] = {}  # seller id -> when last looked up
        self.recent_pending: deque[dict] = deque()  # listed new deals no run has fetched yet
        self.scheduler = Scheduler(runtime, config.workers, config.dispatch_overhead_s,
                                   self.observer)
        self.scheduler.add("backfill", lambda: backfill(self), config.backfill_period_s)
        self.scheduler.add("recent", lambda: recent(self), config.recent_period_s)
        if config.refresh_period_s is not None:
            self.scheduler.add("refresh", lambda: refresh(self), config.refresh_period_s)

    def claim(self, asins: Iterable[str]) -> list[str]:
        """Those of `asins` no task of this collector has examined or is examining, now
        claimed: the backfiller and the recent run meet the same new deals."""
        fresh = [asin for asin in asins if asin not in self.claimed]
        self.claimed.update(fresh)
        return fresh

    def unclaim(self, asins: Iterable[str]) -> None:
        self.claimed.difference_update(asins)

    def sellers_due(self, sellers: Iterable[str]) -> list[str]:
        """Those of `sellers` to look up now: all of them, or with ``seller_cache_s`` those
        not looked up that recently (then counted as looked up now)."""
        keep = self.config.seller_cache_s
        if keep is None:
            return list(sellers)
        now, due = self.runtime.now(), []
        for seller in dict.fromkeys(sellers):
            if now - self.sellers_seen.get(seller, -math.inf) >= keep:
                self.sellers_seen[seller] = now
                due.append(seller)
        return due

    @property
    def tokens(self):
        return self.client.tokens

    def start(self) -> None:
        """Start the schedule; the runtime then runs the tasks as their times come."""
        self.scheduler.start()

    def commit(self, task: str, deals: Sequence[StoredDeal], *, cursor: Cursor | None = None,
               watermark: int | None = None) -> None:
        now = self.runtime.now()
        self.storage.commit(deals, now, cursor=cursor, watermark=watermark)
        self.observer.on_commit(now, task)
        if deals:
            self.observer.on_stored(now, task, [d.asin for d in deals])

    def refreshed(self, task: str, rows: Sequence[tuple[str, int, int]], *,
                  offers: bool) -> None:
        """Store refreshed prices ``(asin, buy, sell)`` of deals already stored."""
        now = self.runtime.now()
        self.storage.refresh(rows, now, offers=offers)
        self.observer.on_refreshed(now, task, [asin for asin, _, _ in rows])
