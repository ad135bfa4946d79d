"""Collector processes: what each one holds in memory, and how task runs find a free one.

The seed ran its tasks in Celery prefork workers (seed-system.md §1.2, concurrency 4):
each run ran in one of four processes, and what a process held in memory was its
own: its client (and so its in-flight slots and its TokenManager's belief), the
ASINs it had claimed, the recent run's pace and waiting deals, the seller cache.
The storage, the schedule and the observer belong to the deployment.

A `Process` is that per-process part, and it is the context (``ctx``) a task is
handed: ``collector.backfill``, ``recent`` and ``refresh`` see no difference
between one process and several. The deployment, ``collector.app.Collector``,
is itself its first process. With ``processes`` above 1, `Pool` runs every task
run in a free process, one run per process at a time, and the beliefs come from
`beliefs`: one `SharedBelief` (``shared_belief``, the seed's Redis keys) or one
private belief each.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence

from .belief import SharedBelief, SharedTokenManager
from .client import KeepaClient
from .config import Config
from .events import Observer
from .recent import Pace
from .runtime import Runtime
from .scheduler import Scheduler
from .storage import Cursor, Storage, StoredDeal
from .tokens import RECHARGING, TokenManager


class Process:
    """One collector process: its own client and belief, claims, recent-run state and
    seller cache, over the deployment's runtime, config, storage, observer and schedule."""

    def __init__(self, runtime: Runtime, config: Config, storage: Storage, observer: Observer,
                 scheduler: Scheduler, domain: int = 1, tokens: TokenManager | None = None):
        self.runtime = runtime
        self.config = config
        self.storage = storage
        self.observer = observer
        self.scheduler = scheduler
        self.client = KeepaClient(runtime, config, observer, domain, tokens)
        self.claimed: set[str] = set()  # ASINs examined (or being examined) by this process
        self.recent_pace = Pace()
        self.sellers_seen: dict[str, float] = {}  # seller id -> when last looked up
        self.recent_pending: deque[dict] = deque()  # listed new deals no run has fetched yet

    def claim(self, asins: Iterable[str]) -> list[str]:
        """Those of `asins` no task of this process has examined or is examining, now
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
    def tokens(self) -> TokenManager:
        return self.client.tokens

    def commit(self, task: str, deals: Sequence[StoredDeal], *, cursor: Cursor | None = None,
               watermark: int | None = None) -> None:
        """Store `deals` and move the progress, in one storage commit. Progress only moves
        forward: a cursor or watermark behind the stored one is not written. Two runs of
        a task overlap once a lock expires under the first (``lock_ttl_s``), and the run
        that started from an older cursor, or read an older list, may commit after the
        one ahead of it. Each run's cursor marks a prefix it committed, so the furthest
        of them skips no chunk. (The seed's watermark had this ratchet since 3770261; its
        cursor did not, as ``cursor_ratchet = false`` models.)"""
        storage, now = self.storage, self.runtime.now()
        if cursor is not None and self.config.cursor_ratchet and cursor < storage.cursor():
            cursor = None
        if watermark is not None:
            stored = storage.watermark()
            if stored is not None and watermark < stored:
                watermark = None
        storage.commit(deals, now, cursor=cursor, watermark=watermark)
        self.observer.on_commit(now, task)
        if deals:
            self.observer.on_stored(now, task, [d.asin for d in deals])

    def refreshed(self, task: str, rows: Sequence[tuple[str, int, int]], *,
                  offers: bool) -> None:
        """Store refreshed prices ``(asin, buy, sell)`` of deals already stored."""
        now = self.runtime.now()
        self.storage.refresh(rows, now, offers=offers)
        self.observer.on_refreshed(now, task, [asin for asin, _, _ in rows])


Task = Callable[[Process], Awaitable[None]]


class Pool:
    """Several processes as the worker slots: a run takes the process idle longest and
    gives it back as it ends. The scheduler has as many slots as there are processes,
    so a started run always finds one idle."""

    def __init__(self, processes: Iterable[Process]):
        self.idle = deque(processes)

    def run(self, task: Task) -> Callable[[], Awaitable[None]]:
        """The scheduler's body for `task`: run it in an idle process."""
        async def body() -> None:
            process = self.idle.popleft()
            try:
                await task(process)
            finally:
                self.idle.append(process)
        return body


def beliefs(config: Config, observer: Observer, now: float) -> list[TokenManager | None]:
    """One belief per process: None for a lone process (its client makes its own, as
    always); else managers over one `SharedBelief`, or private ones (``shared_belief``
    false) whose modes reach the observer as the deployment's (`AnyRecharging`)."""
    if config.processes == 1:
        return [None]
    if config.shared_belief:
        shared = SharedBelief.initial(config, now)
        return [SharedTokenManager(shared, config, observer, now)
                for _ in range(config.processes)]
    tally = AnyRecharging(observer)
    return [TokenManager(config, tally, now) for _ in range(config.processes)]


class AnyRecharging(Observer):
    """The deployment's mode from private beliefs: recharging while any process is. Each
    manager reports only its own changes, so counting them tells how many recharge."""

    def __init__(self, observer: Observer):
        self.observer = observer
        self.recharging = 0

    def on_mode(self, t: float, mode: str) -> None:
        entering = mode == RECHARGING
        self.recharging += 1 if entering else -1
        if self.recharging == (1 if entering else 0):
            self.observer.on_mode(t, mode)
