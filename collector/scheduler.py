"""Periodic and triggered task runs, like Celery beat plus a worker pool.

A trigger queues a run; a free worker slot takes the oldest queued run; a task
already running skips the new run (the seed's non-blocking task locks). Beat
triggers each periodic task at time 0 and every period after. Everything
happens on the runtime's clock, cooperatively, so no lock is needed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

from .client import ApiError, WaitTooLong
from .events import Observer
from .runtime import Runtime

TaskFn = Callable[[], Awaitable[None]]


class Scheduler:
    def __init__(self, runtime: Runtime, workers: int, dispatch_overhead_s: float = 0.0,
                 observer: Observer | None = None):
        self.runtime = runtime
        self.workers = workers
        self.dispatch_overhead_s = dispatch_overhead_s
        self.observer = observer or Observer()
        self.tasks: dict[str, TaskFn] = {}
        self.periods: dict[str, float] = {}
        self.running: set[str] = set()
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
        while self.queue and len(self.running) < self.workers:
            name = self.queue.popleft()
            if name in self.running:
                self.observer.on_task(self.runtime.now(), name, "skip")
                continue
            self.running.add(name)
            self.runtime.spawn(self._run(name))

    async def _run(self, name: str) -> None:
        self.observer.on_task(self.runtime.now(), name, "start")
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
            self.running.discard(name)
        self.observer.on_task(self.runtime.now(), name, outcome, detail)
        self._dispatch()

    async def _beat(self, name: str, period: float) -> None:
        while self.fatal is None:
            self.trigger(name)
            await self.runtime.sleep(period)
