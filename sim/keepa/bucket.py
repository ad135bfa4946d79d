"""Keepa's token bucket as the server keeps it (keepa-api.md §3, §6).

Refill comes as one lump of the net rate every 60 s at a per-account phase
(or continuously, as a setting). Unused tokens expire after an hour; the
reference reads that as a cap of 60 x net rate on the balance (the default)
or as a 60-minute life for each token (``expiry``): then the tokens of each
lump (or, refilled continuously, of each minute) vanish 60 minutes after they
came, oldest spent first, and a deficit is paid off before anything is kept.
The bucket is brought up to date lazily, from the time of each request, so it
needs no clock of its own. The books always balance:
``initial + credited - charged == balance``, where tokens that expire are
taken back off `credited`.
"""

from __future__ import annotations

import math
from collections import deque

MINUTE_MS = 60_000
LIFE_MS = 60 * MINUTE_MS


class TokenBucket:
    def __init__(self, rate: float, start_ms: int, *, phase_ms: int = 0,
                 initial: float | None = None, continuous: bool = False,
                 flow_reduction: float = 0.0, expiry: bool = False):
        self.rate = rate
        self.flow_reduction = flow_reduction
        self.continuous = continuous
        self.phase_ms = phase_ms % MINUTE_MS
        self.initial = self.cap if initial is None else float(initial)
        self.balance = self.initial
        self.last_ms = start_ms
        self.generated = 0.0  # refill the server produced
        self.credited = 0.0  # of which is (or was spent from) the balance
        self.charged = 0.0
        self.min_balance = self.balance
        # expiry mode: the live tokens as [expires_ms, amount], oldest first
        self._lots: deque[list] | None = deque() if expiry else None
        if expiry and self.balance > 0:
            self._seed_lots(start_ms)

    @property
    def net_rate(self) -> float:
        return max(0.0, self.rate - self.flow_reduction)

    @property
    def cap(self) -> float:
        return 60.0 * self.net_rate

    @property
    def expiry(self) -> bool:
        return self._lots is not None

    @property
    def lost_to_cap(self) -> float:
        """Refill that never reached the balance or expired unspent."""
        return self.generated - self.credited

    def ticks(self, start_ms: int, end_ms: int) -> int:
        """Refill instants t = phase (mod 60 s) with start < t <= end."""
        return ((end_ms - self.phase_ms) // MINUTE_MS) - ((start_ms - self.phase_ms) // MINUTE_MS)

    def _minute_start(self, t_ms: int) -> int:
        """The last refill instant at or before `t_ms`."""
        return t_ms - (t_ms - self.phase_ms) % MINUTE_MS

    def advance(self, now_ms: int) -> None:
        if now_ms <= self.last_ms:
            return
        if self._lots is not None:
            self._advance_lots(now_ms)
            return
        if self.continuous:
            gained = self.net_rate * (now_ms - self.last_ms) / MINUTE_MS
        else:
            gained = self.net_rate * self.ticks(self.last_ms, now_ms)
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
        lots = self._lots
        while lots and cost > 0:  # expiry mode: spend the oldest tokens first
            take = min(cost, lots[0][1])
            cost -= take
            lots[0][1] -= take
            if lots[0][1] <= 1e-12:
                lots.popleft()

    def refill_in_ms(self, now_ms: int) -> int:
        """Milliseconds until the next refill (``refillIn``)."""
        if self.continuous:
            return math.ceil(MINUTE_MS / self.net_rate) if self.net_rate else MINUTE_MS
        return MINUTE_MS - ((now_ms - self.phase_ms) % MINUTE_MS)

    # -- expiry mode -----------------------------------------------------------------
    def _seed_lots(self, start_ms: int) -> None:
        """The initial balance as the newest refills of a steady past, so none outlives its hour.

        Refilled continuously, the current minute holds only what it has made so
        far, so an hour can hold at most 59 minutes and that fraction: an
        initial balance above it is cut to it (``initial`` says so).
        """
        tick = self._minute_start(start_ms)
        room = self.net_rate * ((start_ms - tick) / MINUTE_MS if self.continuous else 1.0)
        if self.continuous and self.net_rate and self.balance > room + 59 * self.net_rate:
            self.initial = self.balance = self.min_balance = room + 59 * self.net_rate
        left = self.balance
        while left > 0:
            last = not self.net_rate or tick - MINUTE_MS + LIFE_MS <= start_ms
            amount = left if last else min(left, room)
            if amount > 0:
                self._lots.appendleft([tick + LIFE_MS, amount])
            left -= amount
            tick -= MINUTE_MS
            room = self.net_rate

    def _advance_lots(self, now_ms: int) -> None:
        """Credit each refill in time order, paying a deficit first, and expire old lots."""
        start, self.last_ms = self.last_ms, now_ms
        if self.net_rate <= 0:
            self._expire(now_ms)
            return
        minute = self._minute_start(start)
        if not self.continuous:
            minute += MINUTE_MS  # the first lump after `start`
        while minute <= now_ms:
            if self.continuous:
                span = min(now_ms, minute + MINUTE_MS) - max(start, minute)
                amount = self.net_rate * span / MINUTE_MS
            else:
                amount = self.net_rate
            if self.balance >= 0 and minute + LIFE_MS <= now_ms:
                # no deficit left to pay: lots from over an hour ago are gone unseen
                skipped = (now_ms - LIFE_MS - minute) // MINUTE_MS + 1
                self.generated += amount + self.net_rate * (skipped - 1)
                self._expire(minute + skipped * MINUTE_MS)
                minute += skipped * MINUTE_MS
                continue
            self._expire(minute)
            self._credit(minute, amount)
            minute += MINUTE_MS
        self._expire(now_ms)

    def _credit(self, minute_ms: int, amount: float) -> None:
        self.generated += amount
        self.credited += amount
        if self.balance < 0:
            paid = min(amount, -self.balance)
            self.balance += paid
            amount -= paid
        if amount <= 0:
            return
        self.balance += amount
        expires = minute_ms + LIFE_MS
        if self._lots and self._lots[-1][0] == expires:
            self._lots[-1][1] += amount
        else:
            self._lots.append([expires, amount])

    def _expire(self, now_ms: int) -> None:
        lots = self._lots
        while lots and lots[0][0] <= now_ms:
            _, amount = lots.popleft()
            self.balance -= amount
            self.credited -= amount
        if not lots and 0 < self.balance < 1e-9:  # rounding left over: it expired too
            self.credited -= self.balance
            self.balance = 0.0
