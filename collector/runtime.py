"""The contract between the collector's tasks and whatever runs them.

Nothing in the collector reads a clock, sleeps, opens a socket or starts a
thread by itself: it asks the `Runtime` it was handed. This is what makes the
code tuned in the simulator the code that runs live (DEVELOPERS.md, rule 1).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Coroutine, Generator, Protocol


@dataclass
class Request:
    """One Keepa API call: an endpoint path and its query parameters (no key)."""

    path: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Response:
    """What came back: the HTTP status and the JSON body (None if not JSON)."""

    status: int
    body: dict[str, Any] | None


class TransportError(Exception):
    """The call got no HTTP answer (connection dropped, reset, timed out)."""


class Signal(Protocol):
    """A one-shot event: `fire` it once; awaiting it returns once it has fired
    (at once if it already has). The collector builds its in-flight slots and
    lanes from these (``collector.lanes``), so it needs no lock of its own."""

    def fire(self) -> None: ...

    def __await__(self) -> Generator[Any, Any, None]: ...


class Runtime(Protocol):
    """What a task may use. ``now`` is seconds since the runtime started."""

    rng: random.Random

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> Awaitable[None]: ...

    async def send(self, request: Request) -> Response: ...

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None: ...

    def signal(self) -> Signal: ...
