"""What one live run has done: the `Observer` behind the status line and the run log.

It counts calls, 429s, failures and tokens as the client saw them (the
envelope's ``tokensConsumed``), the longest run of consecutive 429s and of
consecutive failures within one task (a retried request; a failure is any
answer but 200 and 429, or none), and passes mode changes and task errors on
to `notify` as they happen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from collector.events import CallRecord, CallTally, Observer


@dataclass
class Counts(CallTally):
    token_calls: int = 0
    stored: int = 0
    commits: int = 0
    max_429_run: int = 0
    max_failure_run: int = 0
    last_call_at: float | None = None  # runtime seconds
    last_call: str = ""


@dataclass
class LiveStats(Observer):
    notify: Callable[[str, str], None] = lambda kind, message: None
    counts: Counts = field(default_factory=Counts)
    _429_run: dict[str, int] = field(default_factory=dict)
    _failure_run: dict[str, int] = field(default_factory=dict)

    def on_call(self, record: CallRecord) -> None:
        c = self.counts
        c.last_call_at, c.last_call = record.t, f"{record.task} /{record.path} {record.status}"
        if record.path == "token":
            c.token_calls += 1
            return
        c.add(record)
        failed = record.status not in (200, 429)
        c.max_429_run = max(c.max_429_run, _streak(self._429_run, record, record.status == 429))
        c.max_failure_run = max(c.max_failure_run, _streak(self._failure_run, record, failed))

    def on_mode(self, t: float, mode: str) -> None:
        self.notify("mode", f"token manager now {mode}")

    def on_stored(self, t: float, task: str, asins) -> None:
        self.counts.stored += len(asins)

    def on_commit(self, t: float, task: str) -> None:
        self.counts.commits += 1

    def on_task(self, t: float, task: str, event: str, detail: str = "") -> None:
        if event in ("error", "abort"):
            self.notify("warning", f"{task} run ended ({event}): {detail}")
        elif event in ("retry", "malformed"):  # a failed call backing off; a garbled envelope
            self.notify("warning", f"{task}: {detail}")

    def as_dict(self, offset: float) -> dict[str, Any]:
        """The counts, with the last call's time on the wall clock (runtime + `offset`)."""
        out = asdict(self.counts)
        if out["last_call_at"] is not None:
            out["last_call_at"] += offset
        return out


def _streak(runs: dict[str, int], record: CallRecord, hit: bool) -> int:
    runs[record.task] = runs.get(record.task, 0) + 1 if hit else 0
    return runs[record.task]
