"""The client's belief about Keepa's token bucket.

Keepa owns the bucket; the client only sees a response envelope now and then
(``tokensLeft``, ``refillRate``, ``refillIn``, ``timestamp``). `TokenManager`
keeps the last reading, projects it forward with the same rules the server
follows (a lump of ``refillRate`` every minute, ``refillIn`` to the next one,
capped at 60 x rate) and subtracts what the client has reserved since.

It also holds the manager's *mode* (spending or recharging) and the current
burst target, answers every "how long until" question, and keeps what calls
were really charged and how long they took (`CallModel`). Diagnostics call
`TokenManager.state` instead of re-deriving any threshold (the seed's bug 4).
What to do with those facts is the `collector.policies` policy's business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .callmodel import CallModel
from .config import Config
from .events import Observer

SANE_FACTOR = 10  # a reading beyond 10 full buckets either side of zero is garbled

PHASE_SLACK_MS = 1000.0
"""How far two readings may place the minute's refill apart before the client takes the
server for one that refills continuously (`TokenManager._continuous`)."""

SPENDING = "spending"
RECHARGING = "recharging"


@dataclass(frozen=True)
class TokenState:
    """A snapshot for status displays and diagnostics."""

    mode: str
    estimate: float
    target: float
    min_threshold: float
    rate: float
    eta_s: float
    last_reading_age_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class TokenManager:
    """Belief state, fed by envelopes and reservations; time is runtime seconds."""

    def __init__(self, config: Config, observer: Observer | None = None, now: float = 0.0):
        self.config = config
        self.observer = observer or Observer()
        self.rate = config.refill_rate
        self._balance = config.initial_estimate
        self._as_of = now
        self._next_refill: float | None = None  # runtime time of the next lump, if known
        self._read_at: float | None = None
        self.mode = SPENDING
        self.recharge_since: float | None = None
        self.last_call: dict[str, float] = {}
        self.calls = CallModel()  # what calls have been charged and how long they took
        self._in_flight: dict[int, float] = {}  # ticket -> tokens reserved, for calls out
        self._outstanding = 0.0  # their sum
        self._tickets = 0
        self.rejected = ""  # why the last envelope was not adopted (`flaw`), if it was not
        self.continuous = False  # the server was seen to refill token by token (`_continuous`)
        self._phase: float | None = None  # ms into the minute of the lumps, by the first reading
        self._callers: dict[int, str] = {}  # ticket -> task, stamped at the answer (spacing_from)
        self._as_read = config.belief == "last-reading"  # asked on every estimate: once here

    # -- learning --------------------------------------------------------------
    def observe(self, envelope: dict[str, Any] | None, now: float,
                ticket: int | None = None) -> bool:
        """Settle the call `ticket` (if any) and adopt its envelope as the new reading;
        False if it carries none.

        The reading already holds what the server charged for every call that
        finished before it, this one included; the calls still in flight are
        not in it, so their reservations stay subtracted. Without a reading the
        call's reservation stays subtracted too: it may have been charged.
        A bad-key 400 answers with every token field zeroed: that is not a
        bucket reading (keepa-api.md §2), so a zero ``refillRate`` is ignored;
        nor is a garbled envelope (`flaw`): the belief stays as it was, and
        `rejected` says why ("" after any other answer).

        As the seed's V7 (``update_after_call``, which callers skipped on a
        ``tokensLeft`` of 0): with ``spacing_from = "end"`` the answer stamps the
        task's spacing; with ``belief = "last-reading"`` a call's reading gives the
        balance only, as is, and only /token (no `ticket`) gives the rate.
        """
        caller = None
        if ticket is not None:
            self._outstanding -= self._in_flight.pop(ticket)
            caller = self._callers.pop(ticket, None)
            if not self._in_flight:
                self._outstanding = 0.0  # no float residue once nothing is in flight
        self.rejected = self.flaw(envelope)
        if self.rejected or not envelope or "tokensLeft" not in envelope \
                or not envelope.get("refillRate"):
            return False
        if caller is not None and envelope["tokensLeft"]:
            self.last_call[caller] = now
        if ticket is not None and self._as_read:
            if envelope["tokensLeft"]:
                self._balance = float(envelope["tokensLeft"]) - self._outstanding
                self._as_of = self._read_at = now
            return True
        self.rate = float(envelope["refillRate"]) - float(envelope.get("tokenFlowReduction") or 0)
        self._balance = float(envelope["tokensLeft"]) - self._outstanding
        self._as_of = now
        self._read_at = now
        refill_in = envelope.get("refillIn")
        self._next_refill = (None if refill_in is None or self._continuous(envelope, refill_in)
                             else now + refill_in / 1000.0)
        return True

    def _continuous(self, envelope: dict[str, Any], refill_in: float) -> bool:
        """Whether the server refills token by token rather than a lump a minute. Lumps
        come at one point of the minute, so every reading's ``timestamp + refillIn`` falls
        there; a server that refills continuously reports the time to its next token, and
        that point moves. Once a reading puts it more than `PHASE_SLACK_MS` from where the
        first did, the projection adds the refill continuously (no `_next_refill`), so a
        429 waits for the deficit at the rate, not for a minute's lump that never comes."""
        stamp = envelope.get("timestamp")
        if not self.continuous and finite_number(stamp):
            phase = (stamp + refill_in) % 60_000
            if self._phase is None:
                self._phase = phase  # the first reading's: lumps keep to it
            drift = abs(phase - self._phase)
            self.continuous = min(drift, 60_000 - drift) > PHASE_SLACK_MS
        return self.continuous

    def flaw(self, envelope: dict[str, Any] | None) -> str:
        """Why `envelope` is not a reading to adopt, or "" if it is one (or carries none:
        no envelope, or the all-zero one of a refused key).

        Every token field must be a finite number; ``refillRate`` may not be negative,
        ``refillIn`` (if there) must lie within a minute, and ``tokensLeft`` within
        `SANE_FACTOR` buckets either side of zero, a bucket being 60 x the largest rate
        this client knows of (the envelope's, its belief's, its config's): so a garbled
        reading (``"abc"``, 1e12) never becomes the belief, while a noisy reported rate
        or a deep but real deficit still does.
        """
        if not envelope:
            return ""
        if "tokensLeft" not in envelope:
            return "no tokensLeft"
        left, rate = envelope["tokensLeft"], envelope.get("refillRate")
        refill_in, flow = envelope.get("refillIn"), envelope.get("tokenFlowReduction")
        for name, value in (("tokensLeft", left), ("refillRate", rate)):
            if not finite_number(value):
                return f"{name} {value!r} is not a number"
        for name, value in (("refillIn", refill_in), ("tokenFlowReduction", flow)):
            if value is not None and not finite_number(value):
                return f"{name} {value!r} is not a number"
        if rate < 0:
            return f"refillRate {rate!r} is negative"
        if not rate:  # all zero is a refused key's envelope (keepa-api.md §2): no fault
            return "" if not left else "refillRate is 0"
        if refill_in is not None and not 0 <= refill_in <= 60_000:
            return f"refillIn {refill_in!r} ms is not within a minute"
        bound = SANE_FACTOR * 60.0 * max(rate, self.rate, self.config.refill_rate)
        if not -bound <= left <= bound:
            return f"tokensLeft {left!r} is beyond +-{bound:,.0f}"
        return ""

    def reserve(self, task: str, cost: float, now: float) -> int:
        """Take `cost` off the estimate as the call leaves (the server decides the rest);
        the ticket settles it in `observe` when the answer comes."""
        self._balance = self.estimate(now) - cost
        self._as_of = now
        self._tickets += 1
        if self.config.spacing_from == "start":
            self.last_call[task] = now
        else:
            self._callers[self._tickets] = task
        self._in_flight[self._tickets] = cost
        self._outstanding += cost
        return self._tickets

    @property
    def in_flight(self) -> int:
        """Calls reserved and not yet answered."""
        return len(self._in_flight)

    # -- projection ------------------------------------------------------------
    @property
    def cap(self) -> float:
        return 60.0 * self.rate

    def _lumps(self, start: float, end: float) -> int:
        """Refill lumps the server adds in (start, end] by the last reading's phase."""
        if self._next_refill is None or end < self._next_refill:
            return 0
        first = self._next_refill
        if first <= start:
            first += math.ceil((start - first) / 60.0 + 1e-12) * 60.0
            if first <= start:
                first += 60.0
        return 0 if first > end else 1 + int((end - first) // 60.0)

    def estimate(self, now: float) -> float:
        """Projected balance at `now` (the last reading as is with ``belief = "last-reading"``,
        as the seed's V7, which added no refill to it)."""
        if self._as_read:
            return self._balance
        if self._next_refill is None:
            gained = self.rate * max(0.0, now - self._as_of) / 60.0
        else:
            gained = self.rate * self._lumps(self._as_of, now)
        if gained <= 0:
            return self._balance
        return max(self._balance, min(self._balance + gained, self.cap))

    def eta(self, target: float, now: float) -> float:
        """Seconds until the projection reaches `target` (inf if above the cap); with
        ``belief = "last-reading"`` V7's ``ceil((target - T) / r x 60)``."""
        have = self.estimate(now)
        if have >= target:
            return 0.0
        if target > self.cap or self.rate <= 0:
            return math.inf
        if self._as_read:
            return float(math.ceil((target - have) / self.rate * 60.0))
        lumps = math.ceil((target - have) / self.rate)
        if self._next_refill is None:
            return (target - have) / self.rate * 60.0
        return self.refill_in(now) + (lumps - 1) * 60.0

    def refill_in(self, now: float) -> float:
        """Seconds to the next lump by the last reading's phase (its ``refillIn``);
        a whole minute if no reading gave one."""
        nxt = self._next_refill
        if nxt is None:
            return 60.0
        if nxt <= now:
            nxt += (math.floor((now - nxt) / 60.0) + 1) * 60.0
        return nxt - now

    def retry_after(self, now: float) -> float:
        """How long a 429 says to wait, by the config's ``wait_429``.

        ``balance``: until the balance is positive again (the next lump, plus one
        lump per `rate` of deficit), +100 ms, the margin Keepa's Java client adds.
        ``refill``: the next lump +100 ms whatever the deficit, as that client does
        (``refillIn + 100``, keepa-api.md §5.2), so a deep deficit meets a 429 a minute.
        ``refill-deficit``: the community Python client's ``time_to_refill``
        (keepa-api.md §5.1): the next lump, +1 s, plus the deficit at `rate` a minute.
        """
        rule = self.config.wait_429
        if rule == "refill":
            return self.refill_in(now) + 0.1
        if rule == "refill-deficit":
            return self.refill_in(now) + 1.0 + max(0.0, -self.estimate(now)) / self.rate * 60.0
        return self.eta(1e-9, now) + 0.1

    # -- mode --------------------------------------------------------------------
    def target(self) -> float:
        """The burst target for the refill rate currently believed."""
        return self.config.burst_target(self.rate)

    def set_mode(self, mode: str, now: float) -> None:
        if mode == self.mode:
            return
        self.mode = mode
        self.recharge_since = now if mode == RECHARGING else None
        self.observer.on_mode(now, mode)

    # -- persistence (a live collector saves this; ``collector status`` rebuilds it) --------
    def export(self, offset: float = 0.0) -> dict[str, Any]:
        """The belief as plain data; `offset` is added to every time (e.g. to epoch seconds)."""
        def shift(t: float | None) -> float | None:
            return None if t is None else t + offset

        return {"rate": self.rate, "balance": self._balance, "as_of": shift(self._as_of),
                "next_refill": shift(self._next_refill), "read_at": shift(self._read_at),
                "mode": self.mode, "recharge_since": shift(self.recharge_since),
                "last_call": {task: t + offset for task, t in self.last_call.items()}}

    @classmethod
    def restore(cls, config: Config, belief: dict[str, Any]) -> TokenManager:
        """A manager holding an `export`ed belief, on that belief's clock."""
        tokens = cls(config, now=belief["as_of"])
        tokens.rate = belief["rate"]
        tokens._balance = belief["balance"]
        tokens._next_refill = belief["next_refill"]
        tokens._read_at = belief["read_at"]
        tokens.mode = belief["mode"]
        tokens.recharge_since = belief["recharge_since"]
        tokens.last_call = dict(belief["last_call"])
        return tokens

    def state(self, now: float) -> TokenState:
        target = self.target()
        return TokenState(
            mode=self.mode,
            estimate=self.estimate(now),
            target=target,
            min_threshold=self.config.min_token_threshold,
            rate=self.rate,
            eta_s=self.eta(target, now) if self.mode == RECHARGING else 0.0,
            last_reading_age_s=None if self._read_at is None else now - self._read_at,
        )


def finite_number(value: Any) -> bool:
    """A finite int or float (not a bool, a string or NaN): what a token field must be.
    Asked of every envelope's fields, so written without calls: ``type`` is exactly int
    or float (a bool's is bool), and ``x - x`` is 0 only for a finite x."""
    return type(value) in (int, float) and value - value == 0
