"""Where a sweep's runs execute: in this process, a local process pool, or a Dask cluster.

Each executor maps a top-level function over picklable items and yields
``(index, result)`` as runs finish, in whatever order they finish; the sweep
puts rows back in order itself, so the results do not depend on the executor.
A run is a pure function of its config, scenario and seed, so the same item
gives the same result in any process on any machine.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from collector.config import ConfigError


def cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Serial:
    """One worker: run everything here, in order (no pool to start)."""

    def map(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, object]]:
        for index, item in enumerate(items):
            yield index, fn(item)

    def close(self) -> None:
        pass


class Pool:
    """A local process pool of `workers` processes, kept at most two runs ahead each."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = ProcessPoolExecutor(workers, initializer=_worker_setup,
                                        initargs=(os.getpid(),))

    def map(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, object]]:
        pending: dict = {}
        queue = iter(enumerate(items))
        while True:
            for index, item in queue:
                pending[self.pool.submit(fn, item)] = index
                if len(pending) >= 2 * self.workers:
                    break
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=pending.get):
                yield pending.pop(future), future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class Dask:
    """An existing dask.distributed cluster; its workers must have this package installed."""

    def __init__(self, address: str):
        from distributed import Client

        try:
            self.client = Client(address, timeout=5, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self.futures: list = []

    def map(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, object]]:
        from distributed import as_completed

        self.futures = self.client.map(fn, list(items), pure=False)
        index = {future.key: i for i, future in enumerate(self.futures)}
        for future in as_completed(self.futures, loop=self.client.loop):
            yield index[future.key], future.result()

    def close(self) -> None:
        if self.futures:
            self.client.cancel(self.futures)
        self.client.close()


def executor(workers: int, scheduler: str | None):
    """The executor the ``--workers`` and ``--scheduler`` options ask for."""
    if scheduler:
        return Dask(scheduler)
    return Serial() if workers == 1 else Pool(workers)


def _worker_setup(parent: int) -> None:
    """Ctrl-C is the parent's to handle: it stores what is done and shuts the pool down.
    If the parent is killed instead, the worker would wait for work for ever; it
    watches for that and ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()


def _end_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)
