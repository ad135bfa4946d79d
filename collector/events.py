"""Hooks through which the collector reports what it does.

The collector calls these; it never stores metrics itself. The simulator's
recorder, the live status line and the tests each subclass `Observer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CallRecord:
    """One HTTP exchange as the client saw it."""

    t: float
    task: str
    path: str
    items: int
    reserved: float
    status: int
    consumed: float | None
    tokens_left: float | None


@dataclass
class CallTally:
    """Calls counted as the client saw them: tokens reserved beforehand against what
    the envelope reported consumed, 429s, and failures (no answer, a 5xx or a final 4xx)."""

    api_calls: int = 0
    tokens_reserved: float = 0.0
    tokens_consumed: float = 0.0
    http_429: int = 0
    failures: int = 0

    def add(self, record: CallRecord) -> None:
        self.api_calls += 1
        self.tokens_reserved += record.reserved
        self.tokens_consumed += record.consumed or 0
        self.http_429 += record.status == 429
        self.failures += record.status not in (200, 429)


class Observer:
    """No-op base: override what you need."""

    def on_call(self, record: CallRecord) -> None: ...

    def on_mode(self, t: float, mode: str) -> None: ...

    def on_examined(self, t: float, task: str, count: int) -> None: ...

    def on_stored(self, t: float, task: str, asins: Sequence[str]) -> None: ...

    def on_refreshed(self, t: float, task: str, asins: Sequence[str]) -> None: ...

    def on_deleted(self, t: float, task: str, asins: Sequence[str]) -> None: ...

    def on_commit(self, t: float, task: str) -> None: ...

    def on_task(self, t: float, task: str, event: str, detail: str = "") -> None: ...
