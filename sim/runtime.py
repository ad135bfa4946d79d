"""The collector's runtime on a SimPy clock.

The collector's tasks are ``async def`` coroutines. Here each one is driven as
a SimPy process: whenever it awaits a runtime primitive, the primitive yields
a SimPy event up through the coroutine chain; `drive` hands that event to
SimPy and sends the outcome back in. The clock counts whole milliseconds, and
every positive wait is rounded up to at least one, so no loop can spin at a
single instant (the float-clock pitfall).
"""

from __future__ import annotations

import math
import random
from collections.abc import Coroutine, Generator
from typing import Any

import simpy

from collector.runtime import Request, Response, TransportError
from sim.keepa import MockKeepa
from sim.keepa.server import DROPPED


class Event:
    """Awaitable wrapper: awaiting it suspends the coroutine until the event fires."""

    __slots__ = ("event",)

    def __init__(self, event: simpy.Event):
        self.event = event

    def __await__(self) -> Generator[simpy.Event, Any, Any]:
        return (yield self.event)


class _Signal:
    """The runtime's one-shot `Signal` on a SimPy event."""

    __slots__ = ("event",)

    def __init__(self, env: simpy.Environment):
        self.event = env.event()

    def fire(self) -> None:
        if not self.event.triggered:
            self.event.succeed()

    def __await__(self) -> Generator[simpy.Event, Any, None]:
        yield self.event


def drive(coroutine: Coroutine) -> Generator[simpy.Event, Any, Any]:
    """A SimPy process body that runs `coroutine` to completion, or until the process
    is interrupted (its collector crashed, ``sim.restarts``): then the coroutine is
    closed where it waits, so its ``finally`` clauses run and nothing after them."""
    send, value = coroutine.send, None
    while True:
        try:
            event = send(value)
        except StopIteration as stop:
            return stop.value
        try:
            value = yield event
        except simpy.Interrupt:
            coroutine.close()
            return None


def answer(status: int, body: dict | str) -> Response:
    """The mock's answer as the client gets it: no answer at all if the connection
    dropped, no body if it is not JSON."""
    if status == DROPPED:
        raise TransportError("connection dropped")
    return Response(status, body if isinstance(body, dict) else None)


def to_ms(seconds: float) -> int:
    return math.ceil(seconds * 1000) if seconds > 0 else 0


class SimRuntime:
    """Virtual time and an in-process mock Keepa, for the collector."""

    def __init__(self, env: simpy.Environment, server: MockKeepa, start_ms: int, seed: int,
                 key: str = "sim", rng: random.Random | None = None):
        self.env = env
        self.server = server
        self.start_ms = start_ms
        self.key = key
        self.rng = rng or random.Random(f"{seed}/client")  # a later life goes on with its stream

    def now(self) -> float:
        return self.env.now / 1000.0

    def sleep(self, seconds: float) -> Event:
        return Event(self.env.timeout(to_ms(seconds)))

    async def send(self, request: Request) -> Response:
        params = {**request.params, "key": self.key}
        pending = self.server.begin(request.path, params, self.start_ms + self.env.now)
        if pending.latency_ms:
            await Event(self.env.timeout(pending.latency_ms))
        return answer(*self.server.finish(pending, self.start_ms + self.env.now))

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self.env.process(drive(coroutine))

    def signal(self) -> _Signal:
        return _Signal(self.env)
