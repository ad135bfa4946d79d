"""`Collector`: the parts wired together for one runtime.

The same object runs in the simulator and live; only the runtime, the storage
and the observer handed to it differ. It is the deployment (the schedule, the
storage, the observer) and its first collector process (``collector.processes``);
with ``processes`` above 1 it runs the others beside it, and every task run
goes to an idle one.
"""

from __future__ import annotations

from .backfill import backfill
from .config import Config
from .events import Observer
from .janitor import janitor
from .processes import Pool, Process, Task, beliefs
from .recent import recent
from .refresh import refresh
from .runtime import Runtime
from .scheduler import Scheduler, TaskFn
from .storage import Storage


class Collector(Process):
    def __init__(self, runtime: Runtime, config: Config, storage: Storage,
                 observer: Observer | None = None, domain: int = 1):
        observer = observer or Observer()
        slots = config.workers if config.processes == 1 else config.processes
        scheduler = Scheduler(runtime, slots, config.dispatch_overhead_s, observer,
                              config.lock_ttl_s)
        first, *others = beliefs(config, observer, runtime.now())
        super().__init__(runtime, config, storage, observer, scheduler, domain, first)
        self.processes: list[Process] = [self] + [
            Process(runtime, config, storage, observer, scheduler, domain, tokens)
            for tokens in others]
        self.pool = Pool(self.processes) if others else None
        self.scheduler.add("backfill", self.in_a_process(backfill), config.backfill_period_s)
        self.scheduler.add("recent", self.in_a_process(recent), config.recent_period_s)
        if config.refresh_period_s is not None:
            self.scheduler.add("refresh", self.in_a_process(refresh), config.refresh_period_s)
        if config.janitor_ttl_s is not None:
            self.scheduler.add("janitor", self.in_a_process(lambda p: janitor(p, self.processes)),
                               config.janitor_period_s)

    def in_a_process(self, task: Task) -> TaskFn:
        """The scheduler's body for `task`: a run in this process, or with several
        processes, in an idle one."""
        if self.pool is None:
            return lambda: task(self)
        return self.pool.run(task)

    def start(self) -> None:
        """Start the schedule; the runtime then runs the tasks as their times come."""
        self.scheduler.start()
