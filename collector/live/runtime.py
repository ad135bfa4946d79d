"""The runtime contract on asyncio and the monotonic clock.

The tasks are the same coroutines the simulator drives; here asyncio drives
them, sleeps are real, and requests go to a transport: Keepa over HTTP, or
the mock Keepa in process (``sim.transport``), like httpx's transports.
`LiveRuntime.stop` cancels every task at its current await, which makes any
wait interruptible and never splits a storage commit (commits do not await).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from collector.runtime import Request, Response


class Transport(Protocol):
    async def send(self, request: Request) -> Response: ...


class _Signal:
    """The runtime's one-shot `Signal` on an asyncio future."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future = asyncio.get_running_loop().create_future()

    def fire(self) -> None:
        if not self.future.done():
            self.future.set_result(None)

    def __await__(self):
        return self.future.__await__()


class LiveRuntime:
    def __init__(self, transport: Transport, seed: int | None = None):
        self.transport = transport
        self.rng = random.Random(seed)
        self._t0 = time.monotonic()
        self._tasks: set[asyncio.Task] = set()
        self.failure: BaseException | None = None  # the first task that died of a bug

    def now(self) -> float:
        return time.monotonic() - self._t0

    def sleep(self, seconds: float):
        return asyncio.sleep(max(0.0, seconds))

    async def send(self, request: Request) -> Response:
        return await self.transport.send(request)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def signal(self) -> _Signal:
        return _Signal()

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self.failure is None:
            self.failure = task.exception()

    async def stop(self) -> None:
        """Cancel every task and wait until they have all unwound."""
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
