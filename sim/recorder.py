"""Everything a run did, and the summary `sim run` prints.

The recorder is the collector's `Observer` (client-side view: calls, modes,
stored deals, and per endpoint the tokens reserved against those the
envelopes reported consumed) and reads the mock's books at the end
(server-side truth: tokens generated, charged, lost to the cap, the lowest
balance).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from collector.events import CallRecord, CallTally, Observer
from collector.janitor import TASK as JANITOR
from collector.tokens import RECHARGING


@dataclass
class TaskBook(CallTally):
    token_calls: int = 0
    deals_processed: int = 0
    deals_stored: int = 0
    deals_refreshed: int = 0
    commits: int = 0
    events: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class Sample:
    """The bucket once a minute: server truth beside client belief, and the deals stored."""

    t: float
    server_balance: float
    estimate: float
    mode: str
    stored: int


class Recorder(Observer):
    def __init__(self) -> None:
        self.tasks: dict[str, TaskBook] = defaultdict(TaskBook)
        self.endpoints: dict[str, CallTally] = defaultdict(CallTally)
        self.modes: list[tuple[float, str]] = []
        self.stored: list[tuple[float, str]] = []
        self.refreshed: list[tuple[float, str]] = []
        self.deleted: list[tuple[float, str]] = []
        self.alive: set[str] = set()  # the deals stored now
        self.commits = 0
        self.samples: list[Sample] = []
        self.calls: list[CallRecord] = []

    def on_call(self, record: CallRecord) -> None:
        self.calls.append(record)
        self.endpoints[record.path].add(record)
        book = self.tasks[record.task]
        if record.path == "token":
            book.token_calls += 1
            return
        book.add(record)

    def on_mode(self, t: float, mode: str) -> None:
        self.modes.append((t, mode))

    def on_examined(self, t: float, task: str, count: int) -> None:
        self.tasks[task].deals_processed += count

    def on_stored(self, t: float, task: str, asins) -> None:
        self.tasks[task].deals_stored += len(asins)
        self.stored.extend((t, a) for a in asins)
        self.alive.update(asins)

    def on_refreshed(self, t: float, task: str, asins) -> None:
        asins = [a for a in asins if a in self.alive]  # not those deleted while it asked
        self.tasks[task].deals_refreshed += len(asins)
        self.refreshed.extend((t, a) for a in asins)

    def on_deleted(self, t: float, task: str, asins) -> None:
        self.deleted.extend((t, a) for a in asins)
        self.alive.difference_update(asins)

    def on_commit(self, t: float, task: str) -> None:
        self.commits += 1
        self.tasks[task].commits += 1

    def on_task(self, t: float, task: str, event: str, detail: str = "") -> None:
        self.tasks[task].events[event] += 1

    # -- the summary ---------------------------------------------------------------
    def recharge_seconds(self, horizon: float) -> float:
        total, since = 0.0, None
        for t, mode in self.modes:
            if mode == RECHARGING and since is None:
                since = t
            elif mode != RECHARGING and since is not None:
                total, since = total + t - since, None
        return total + (horizon - since if since is not None else 0.0)

    def summary(self, horizon_s: float, bucket, arrived_s: dict[str, float]) -> dict:
        """The run's figures; `arrived_s` maps a new deal's ASIN to when Keepa listed it.

        ``token_utilization`` is the share of the tokens the run had (initial balance
        plus refill generated) that it spent: tokens charged less ``token_deficit``, the
        charges made on credit that the balance still owes at the end (minus the final
        balance if that is negative, else 0), over initial + generated. So it cannot
        exceed 1; it is charged / (initial + generated) whenever the run ends at or
        above 0."""
        hours, minutes = horizon_s / 3600, horizon_s / 60
        books = dict(sorted(self.tasks.items()))
        stored_at: dict[str, float] = {}
        for t, asin in self.stored:
            stored_at.setdefault(asin, t)
        times = [0.0, *sorted(stored_at.values()), horizon_s]
        fresh = [stored_at[a] - arrived for a, arrived in arrived_s.items() if a in stored_at]
        api_calls = sum(b.api_calls for b in books.values())
        available = bucket.initial + bucket.generated
        deficit = max(0.0, -bucket.balance)
        return {
            "deals_processed": sum(b.deals_processed for b in books.values()),
            "deals_stored": len(stored_at),
            "deals_per_hour": len(stored_at) / hours,
            "api_calls": api_calls,
            "calls_per_minute": api_calls / minutes,
            "token_calls": sum(b.token_calls for b in books.values()),
            "commits": self.commits,
            "initial_balance": bucket.initial,
            "tokens_generated": bucket.generated,
            "tokens_consumed": bucket.charged,
            "tokens_reserved": sum(b.tokens_reserved for b in books.values()),
            "token_utilization": (bucket.charged - deficit) / available if available else 0.0,
            "token_deficit": deficit,
            "tokens_lost_to_cap": bucket.lost_to_cap,
            "http_429": sum(b.http_429 for b in books.values()),
            "call_failures": sum(e.failures for e in self.endpoints.values()),
            "recharge_fraction": self.recharge_seconds(horizon_s) / horizon_s,
            "min_balance": bucket.min_balance,
            "final_balance": bucket.balance,
            "max_gap_s": float(np.max(np.diff(times))),
            "new_deals_listed": len(arrived_s),
            "new_deals_stored": len(fresh),
            "freshness_p50_s": _pct(fresh, 50),
            "freshness_p95_s": _pct(fresh, 95),
            "deals_refreshed": len(self.refreshed),
            "stale_p95_s": stale_p95(self.stored + self.refreshed, horizon_s, self.deleted),
            **self.deletions(),
            "tasks": {
                name: {
                    "api_calls": b.api_calls,
                    "calls_per_minute": b.api_calls / minutes,
                    "token_calls": b.token_calls,
                    "tokens_consumed": b.tokens_consumed,
                    "tokens_reserved": b.tokens_reserved,
                    "http_429": b.http_429,
                    "deals_processed": b.deals_processed,
                    "deals_stored": b.deals_stored,
                    "deals_refreshed": b.deals_refreshed,
                    "commits": b.commits,
                    "runs": b.events["start"],
                    "skipped": b.events["skip"],
                    "aborted": b.events["abort"],
                    "errors": b.events["error"],
                }
                for name, b in books.items()
            },
            "endpoints": {
                path: {"calls": e.api_calls, "tokens_reserved": e.tokens_reserved,
                       "tokens_consumed": e.tokens_consumed, "http_429": e.http_429,
                       "failures": e.failures}
                for path, e in sorted(self.endpoints.items())
            },
        }

    def deletions(self) -> dict:
        """With a janitor: the deletions (a deal deleted twice counts twice), the stores
        of deals deleted before (each also counts in ``deals_processed``, as it was
        examined again, but once only in ``deals_stored``, which counts distinct deals),
        and the deals stored at the end."""
        if JANITOR not in self.tasks:
            return {}
        gone_at: dict[str, float] = {}
        for t, asin in self.deleted:
            gone_at.setdefault(asin, t)
        again = sum(1 for t, asin in self.stored if t > gone_at.get(asin, t))
        return {"deals_deleted": len(self.deleted), "deals_stored_again": again,
                "deals_stored_at_end": len(self.alive)}


def stale_p95(fetches: list[tuple[float, str]], horizon_s: float,
              deleted: Iterable[tuple[float, str]] = ()) -> float | None:
    """The 95th percentile of stored deals' data age, over deals and time alike.

    A deal's data is as old as the time since it was last fetched (stored or
    refreshed), so its age saws from 0 up over each interval between fetches
    and up to the end of the run, or up to its deletion (`deleted`), after
    which it is not stored until a fetch stores it again. Picking a stored
    deal and a moment at random, weighted by how long each deal was stored,
    gives an age that is uniform on each such interval: this is the percentile
    of that mixture. None when nothing was stored."""
    times: dict[str, list[tuple[float, bool]]] = {}
    for t, asin in fetches:
        times.setdefault(asin, []).append((t, False))
    for t, asin in deleted:
        times.setdefault(asin, []).append((t, True))
    spans = []
    for events in times.values():
        events.sort()
        last = None  # when the deal's data was last fetched, while it is stored
        for t, gone in events:
            if last is not None:
                spans.append(t - last)
            last = None if gone else t
        if last is not None:
            spans.append(horizon_s - last)
    lengths = np.sort(np.asarray(spans, dtype=float))
    total = lengths.sum() if len(lengths) else 0.0
    if total <= 0:
        return None if not len(lengths) else 0.0
    # mass below age a: sum(min(a, L)); over [L_(j-1), L_j] it is C_j + a * (n - j)
    n = len(lengths)
    below = np.concatenate([[0.0], np.cumsum(lengths)])[:-1]  # C_j: the spans shorter than L_j
    mass = below + lengths * (n - np.arange(n))  # sum(min(L_j, L)) at each a = L_j
    j = int(np.searchsorted(mass, 0.95 * total))
    return float((0.95 * total - below[j]) / (n - j))


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None
