"""Periodic and triggered task runs, like Celery beat plus a worker pool.

A trigger queues a run; a free worker slot takes the oldest queued run; a task
whose lock is held skips the new run (the seed's non-blocking task locks). A
run takes its task's lock as it starts and gives it back as it ends; with
`lock_ttl_s` the lock also expires that long after it was taken, as the seed's
Redis locks did (seed-system.md §1.8), so a run that outlives it lets a second
instance of the task start beside it (reported as an "overlap"), and the first
run's release then leaves the new owner's lock alone. Beat triggers each
periodic task at time 0 and every period after. Everything happens on the
runtime's clock, cooperatively, so the locks need no lock of their own.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Awaitable, Callable

from .client import ApiError, WaitTooLong
from .events import Observer
from .runtime import Runtime

TaskFn = Callable[[], Awaitable[None]]


class Scheduler:
    def __init__(self, runtime: Runtime, workers: int, dispatch_overhead_s: float = 0.0,
                 observer: Observer | None = None, lock_ttl_s: float | None = None):
        self.runtime = runtime
        self.workers = workers
        self.dispatch_overhead_s = dispatch_overhead_s
        self.observer = observer or Observer()
        self.lock_ttl_s = math.inf if lock_ttl_s is None else lock_ttl_s
        self.tasks: dict[str, TaskFn] = {}
        self.periods: dict[str, float] = {}
        self.locks: dict[str, tuple[float, int]] = {}  # task -> (expiry, the owning run)
        self.running: Counter[str] = Counter()  # task -> its runs in progress
        self.busy = 0  # worker slots taken
        self.runs = 0  # runs started, numbering them
        self.queue: deque[str] = deque()
        self.fatal: ApiError | None = None

    def add(self, name: str, fn: TaskFn, period_s: float | None = None) -> None:
        self.tasks[name] = fn
        if period_s is not None:
            self.periods[name] = period_s

    def start(self) -> None:
        """Start beat: one loop per periodic task."""
        for name, period in self.periods.items():
            self.runtime.spawn(self._beat(name, period))

    def trigger(self, name: str) -> None:
        if self.fatal is None:
            self.queue.append(name)
            self._dispatch()

    def _dispatch(self) -> None:
        while self.queue and self.busy < self.workers:
            name = self.queue.popleft()
            now = self.runtime.now()
            lock = self.locks.get(name)
            if lock is not None and lock[0] > now:
                self.observer.on_task(now, name, "skip")
                continue
            self.runs += 1
            self.locks[name] = (now + self.lock_ttl_s, self.runs)
            self.busy += 1
            self.runtime.spawn(self._run(name, self.runs))

    async def _run(self, name: str, run: int) -> None:
        now = self.runtime.now()
        self.observer.on_task(now, name, "start")
        if self.running[name]:
            self.observer.on_task(now, name, "overlap")  # its lock expired under a run
        self.running[name] += 1
        outcome, detail = "end", ""
        try:
            await self.runtime.sleep(self.dispatch_overhead_s)
            await self.tasks[name]()
        except WaitTooLong as exc:
            outcome, detail = "abort", str(exc)
        except ApiError as exc:
            outcome, detail = "error", str(exc)
            if exc.fatal:
                self.fatal = exc
                self.queue.clear()
        finally:
            self.running[name] -= 1
            self.busy -= 1
            if self.locks.get(name, (0.0, 0))[1] == run:
                del self.locks[name]  # an expired lock another run took is not ours to free
        self.observer.on_task(self.runtime.now(), name, outcome, detail)
        self._dispatch()

    async def _beat(self, name: str, period: float) -> None:
        while self.fatal is None:
            self.trigger(name)
            await self.runtime.sleep(period)
