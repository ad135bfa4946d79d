"""`Collector`: the parts wired together for one runtime.

The same object runs in the simulator and live; only the runtime, the storage
and the observer handed to it differ.
"""

from __future__ import annotations

from collections.abc import Sequence

from .backfill import backfill
from .client import KeepaClient
from .config import Config
from .events import Observer
from .recent import recent
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
        self.scheduler = Scheduler(runtime, config.workers, config.dispatch_overhead_s,
                                   self.observer)
        self.scheduler.add("backfill", lambda: backfill(self), config.backfill_period_s)
        self.scheduler.add("recent", lambda: recent(self), config.recent_period_s)

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
