"""Work in flight: a bound on concurrent calls, and lanes that share a queue of work.

Both are built from the runtime's one-shot `Signal`, so they behave the same
on the SimPy clock and on asyncio, and cost nothing extra while there is no
contention: with one lane the work runs in the caller's own coroutine, and a
free slot is taken without waiting on anything.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable

from .runtime import Runtime, Signal


class Slots:
    """A counting semaphore: at most `size` holders at once. Waiters are served by
    `rank` (lowest first), then first come first served."""

    def __init__(self, runtime: Runtime, size: int):
        self.runtime = runtime
        self.size = size
        self.held = 0
        self._waiting: list[tuple[int, int, Signal]] = []  # a heap of (rank, arrival, signal)
        self._arrivals = 0

    async def acquire(self, rank: int = 0) -> None:
        if self.held < self.size and not self._waiting:
            self.held += 1
            return
        signal = self.runtime.signal()
        self._arrivals += 1
        heapq.heappush(self._waiting, (rank, self._arrivals, signal))
        await signal  # the releaser handed its slot over: `held` already counts us

    def outranked(self, rank: int) -> bool:
        """Whether a waiter goes before `rank`."""
        return bool(self._waiting) and self._waiting[0][0] < rank

    def release(self) -> None:
        if self._waiting:
            heapq.heappop(self._waiting)[2].fire()
        else:
            self.held -= 1


async def run_lanes(runtime: Runtime, lanes: int, step: Callable[[], Awaitable[bool]]) -> None:
    """Call `step` over and over on `lanes` concurrent lanes, until it returns False on each.

    The first exception stops every lane from taking another step; it is raised
    once all lanes have ended, so no work is left running behind the caller.
    """
    failures: list[BaseException] = []

    async def lane() -> None:
        try:
            while not failures and await step():
                pass
        except Exception as exc:  # noqa: BLE001 - raised again below, once all lanes are done
            failures.append(exc)

    if lanes <= 1:
        await lane()
    else:
        done = [runtime.signal() for _ in range(lanes)]

        async def tracked(signal: Signal) -> None:
            try:
                await lane()
            finally:
                signal.fire()

        for signal in done:
            runtime.spawn(tracked(signal))
        for signal in done:
            await signal
    if failures:
        raise failures[0]
