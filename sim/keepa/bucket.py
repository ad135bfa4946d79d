"""Keepa's token bucket as the server keeps it (keepa-api.md §3, §6).

Refill comes as one lump of the net rate every 60 s at a per-account phase
(or continuously, as a setting); the balance is capped at 60 x net rate. It is
brought up to date lazily, from the time of each request, so it needs no clock
of its own. The books always balance:
``initial + credited - charged == balance``.
"""

from __future__ import annotations

import math

MINUTE_MS = 60_000


class TokenBucket:
    def __init__(self, rate: float, start_ms: int, *, phase_ms: int = 0,
                 initial: float | None = None, continuous: bool = False,
                 flow_reduction: float = 0.0):
        self.rate = rate
        self.flow_reduction = flow_reduction
        self.continuous = continuous
        self.phase_ms = phase_ms % MINUTE_MS
        self.initial = self.cap if initial is None else float(initial)
        self.balance = self.initial
        self.last_ms = start_ms
        self.generated = 0.0  # refill the server produced
        self.credited = 0.0  # of which reached the balance
        self.charged = 0.0
        self.min_balance = self.balance

    @property
    def net_rate(self) -> float:
        return max(0.0, self.rate - self.flow_reduction)

    @property
    def cap(self) -> float:
        return 60.0 * self.net_rate

    @property
    def lost_to_cap(self) -> float:
        return self.generated - self.credited

    def _ticks(self, start_ms: int, end_ms: int) -> int:
        """Refill instants t = phase (mod 60 s) with start < t <= end."""
        return ((end_ms - self.phase_ms) // MINUTE_MS) - ((start_ms - self.phase_ms) // MINUTE_MS)

    def advance(self, now_ms: int) -> None:
        if now_ms <= self.last_ms:
            return
        if self.continuous:
            gained = self.net_rate * (now_ms - self.last_ms) / MINUTE_MS
        else:
            gained = self.net_rate * self._ticks(self.last_ms, now_ms)
        self.last_ms = now_ms
        if gained <= 0:
            return
        new = max(self.balance, min(self.balance + gained, self.cap))
        self.generated += gained
        self.credited += new - self.balance
        self.balance = new

    def charge(self, cost: float, now_ms: int) -> None:
        self.advance(now_ms)
        self.balance -= cost
        self.charged += cost
        self.min_balance = min(self.min_balance, self.balance)

    def refill_in_ms(self, now_ms: int) -> int:
        """Milliseconds until the next refill (``refillIn``)."""
        if self.continuous:
            return math.ceil(MINUTE_MS / self.net_rate) if self.net_rate else MINUTE_MS
        return MINUTE_MS - ((now_ms - self.phase_ms) % MINUTE_MS)
