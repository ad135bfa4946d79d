"""Faults the mock can inject, all off by default (keepa-api.md §4, §6.7).

Server errors with non-JSON bodies at a rate per status, outage windows,
dropped connections (the server did the work and charged it; the answer is
lost, as a client-side timeout still costs tokens), slow responses, offer
fetches that fail (1 token, history only), noise on the reported
``refillRate`` (off by up to N in every envelope, or the true rate with now
and then a spike of another value, or both), and an opt-in "lockout below -N"
rule that no Keepa document states. Each kind draws from its own seeded
stream, so switching one on leaves the others' draws alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from http import HTTPStatus

from .errors import SettingsError

RATE_FLOOR = 1  # the least refillRate the noise reports: a whole rate above 0, which
# the client does not discard as the all-zero envelope of a refused key


@dataclass(frozen=True)
class FaultSettings:
    """The fault knobs of `ServerSettings`, parsed and checked."""

    errors: tuple[tuple[int, float], ...]  # (status, share of requests)
    outages: tuple[tuple[int, int], ...]  # (start, end) ms after the server started
    drop: float
    slow: float
    slow_ms: int
    offers_fail: float
    rate_noise: float
    rate_spike_share: float
    rate_spike: float
    lockout_below: float | None
    lockout_ms: int


def parse_errors(text: str) -> tuple[tuple[int, float], ...]:
    """``"500:0.02,503:0.01"`` → ((500, 0.02), (503, 0.01))."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            status, share = part.split(":")
            out.append((int(status), float(share)))
        except ValueError:
            raise SettingsError(f"server.errors: expected STATUS:SHARE,..., got {text!r}") from None
    for status, share in out:
        if not 500 <= status <= 599:
            raise SettingsError(f"server.errors: status must be 5xx, got {status}")
        if not 0 <= share <= 1:
            raise SettingsError(f"server.errors: share must be between 0 and 1, got {share:g}")
    if sum(share for _, share in out) > 1:
        raise SettingsError("server.errors: shares add up to more than 1")
    return tuple(out)


def parse_windows(text: str) -> tuple[tuple[int, int], ...]:
    """``"3600+600,7200+60"`` (seconds after the start, + length) → ms windows."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            start, length = (float(x) for x in part.split("+"))
        except ValueError:
            raise SettingsError(f"server.outages: expected START_S+LENGTH_S,..., got {text!r}") from None
        if not (0 <= start < float("inf") and 0 < length < float("inf")):
            raise SettingsError(f"server.outages: need start >= 0 and length > 0, got {part!r}")
        out.append((round(start * 1000), round((start + length) * 1000)))
    return tuple(sorted(out))


def error_page(status: int) -> str:
    """The HTML a failing front end answers with instead of JSON."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return f"<html><head><title>{status} {phrase}</title></head><body><h1>{status} {phrase}</h1></body></html>"


class Faults:
    """The draws and the lockout state of one mock server."""

    def __init__(self, settings: FaultSettings, seed: int, start_ms: int):
        self.s = settings
        self.start_ms = start_ms
        self.rng = {kind: random.Random(f"{seed}/fault/{kind}")
                    for kind in ("errors", "drop", "slow", "offers", "noise", "spike")}
        self.locked_until: int | None = None

    def failure(self, now_ms: int) -> int | None:
        """The status of a server error this request meets, if any: outage first, then errors."""
        t = now_ms - self.start_ms
        if any(start <= t < end for start, end in self.s.outages):
            return 503
        if self.s.errors:
            draw = self.rng["errors"].random()
            for status, share in self.s.errors:
                if draw < share:
                    return status
                draw -= share
        return None

    def dropped(self) -> bool:
        return bool(self.s.drop) and self.rng["drop"].random() < self.s.drop

    def slow_ms(self) -> int:
        return self.s.slow_ms if self.s.slow and self.rng["slow"].random() < self.s.slow else 0

    def offers_failed(self) -> bool:
        return bool(self.s.offers_fail) and self.rng["offers"].random() < self.s.offers_fail

    def reported_rate(self, rate: float) -> float:
        """The ``refillRate`` an envelope reports for the true `rate`: with ``rate_noise``
        N, `rate` + U(-N, N) rounded, never below `RATE_FLOOR`; in a ``rate_spike_share``
        of envelopes, ``rate_spike`` instead. Each draws for every envelope while it is
        on, so switching one on leaves the other's draws alone."""
        s = self.s
        if s.rate_noise:
            rate = max(RATE_FLOOR, round(rate + self.rng["noise"].uniform(-s.rate_noise,
                                                                           s.rate_noise)))
        if s.rate_spike_share and self.rng["spike"].random() < s.rate_spike_share:
            rate = s.rate_spike
        return rate

    # -- lockout (opt-in, not documented by Keepa) --------------------------------------
    def locked(self, now_ms: int) -> bool:
        return self.locked_until is not None and now_ms < self.locked_until

    def after_charge(self, balance: float, now_ms: int) -> None:
        if self.s.lockout_below is not None and balance < -self.s.lockout_below:
            self.locked_until = now_ms + self.s.lockout_ms
