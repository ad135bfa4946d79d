"""Token policies: when may a call go, and how long to wait if not.

A policy is a pure decision over the `TokenManager`'s belief; it never sleeps
or calls anything itself (the client does, see ``collector.client``). New
policies fit here without touching the tasks: register them in `POLICIES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from .tokens import RECHARGING, SPENDING, TokenManager


@dataclass(frozen=True)
class Wait:
    """Not yet: wait this long (may be inf: re-check on the poll interval)."""

    seconds: float
    reason: str  # "spacing", "recharge" or "deficit"


class TokenPolicy(Protocol):
    def decide(self, tokens: TokenManager, task: str, cost: float, now: float) -> Wait | None:
        """None lets a call reserving `cost` go now."""

    def after_429(self, tokens: TokenManager, now: float) -> float:
        """Seconds to wait before retrying a request the server refused."""


def _spacing(tokens: TokenManager, task: str, now: float) -> Wait | None:
    last = tokens.last_call.get(task)
    left = -math.inf if last is None else last + tokens.config.min_interval_s - now
    return Wait(left, "spacing") if left > 0 else None


class SeedPolicy:
    """The TokenManager rules of 2026-02-08 (seed-system.md §2.1, V7).

    While recharging, wait until the estimate reaches the burst target (or
    the recharge timeout passes). Then keep each task's calls `min_interval_s`
    apart. A call is allowed while the pre-call estimate is at least
    `min_token_threshold`, whatever it costs; below it, enter recharge mode.
    An optional `max_deficit` keeps the post-call estimate above a floor.
    """

    def decide(self, tokens: TokenManager, task: str, cost: float, now: float) -> Wait | None:
        config = tokens.config
        if tokens.mode == RECHARGING:
            wait = self._recharge_wait(tokens, now)
            if wait is not None:
                return wait
            tokens.set_mode(SPENDING, now)
        spacing = _spacing(tokens, task, now)
        if spacing is not None:
            return spacing
        estimate = tokens.estimate(now)
        if estimate < config.min_token_threshold:
            tokens.set_mode(RECHARGING, now)
            return self._recharge_wait(tokens, now)
        if config.max_deficit is not None and estimate - cost < config.max_deficit:
            return Wait(tokens.eta(config.max_deficit + cost, now), "deficit")
        return None

    @staticmethod
    def _recharge_wait(tokens: TokenManager, now: float) -> Wait | None:
        timeout = tokens.config.recharge_timeout_s
        left = math.inf if timeout is None else tokens.recharge_since + timeout - now
        eta = tokens.eta(tokens.target(), now)
        if eta <= 0 or left <= 0:
            return None
        return Wait(min(eta, left), "recharge")

    def after_429(self, tokens: TokenManager, now: float) -> float:
        return tokens.retry_after(now)


class ReactivePolicy:
    """A community client: no budget of its own, only spacing and 429 retries."""

    def decide(self, tokens: TokenManager, task: str, cost: float, now: float) -> Wait | None:
        return _spacing(tokens, task, now)

    def after_429(self, tokens: TokenManager, now: float) -> float:
        return tokens.retry_after(now)


POLICIES: dict[str, type] = {"seed": SeedPolicy, "reactive": ReactivePolicy}
