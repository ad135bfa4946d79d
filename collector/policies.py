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
    An optional `max_deficit` keeps the post-call estimate above a floor, and
    an optional `low_cost_release` ends recharge early for a cheap call (the
    later rules, §2.2 V12 and V17).
    """

    def decide(self, tokens: TokenManager, task: str, cost: float, now: float) -> Wait | None:
        config = tokens.config
        if tokens.mode == RECHARGING:
            wait = self._recharge_wait(tokens, cost, now)
            if wait is not None:
                return wait
            tokens.set_mode(SPENDING, now)
        spacing = _spacing(tokens, task, now)
        if spacing is not None:
            return spacing
        estimate = tokens.estimate(now)
        if estimate < config.min_token_threshold:
            tokens.set_mode(RECHARGING, now)
            return self._recharge_wait(tokens, cost, now)
        if config.max_deficit is not None and estimate - cost < config.max_deficit:
            return Wait(tokens.eta(config.max_deficit + cost, now), "deficit")
        return None

    @staticmethod
    def _recharge_wait(tokens: TokenManager, cost: float, now: float) -> Wait | None:
        """None once recharge may end: the burst target reached, the timeout passed,
        or a call of at most `low_cost_max` finding `low_cost_release` tokens."""
        config = tokens.config
        left = (math.inf if config.recharge_timeout_s is None
                else tokens.recharge_since + config.recharge_timeout_s - now)
        eta = tokens.eta(tokens.target(), now)
        if eta <= 0 or left <= 0 or (config.low_cost_release is not None
                                     and cost <= config.low_cost_max
                                     and tokens.estimate(now) >= config.low_cost_release):
            return None
        return Wait(min(eta, left), "recharge")  # toward the target, even for a cheap call

    def after_429(self, tokens: TokenManager, now: float) -> float:
        return tokens.retry_after(now)


class ReactivePolicy:
    """A community client: no budget of its own, only spacing and 429 retries."""

    def decide(self, tokens: TokenManager, task: str, cost: float, now: float) -> Wait | None:
        return _spacing(tokens, task, now)

    def after_429(self, tokens: TokenManager, now: float) -> float:
        return tokens.retry_after(now)


class AdaptivePolicy:
    """Spend the tokens as they come, on what calls are learned to cost.

    A call goes once the estimate is positive (so Keepa admits it) and, counted
    with the refill that lands while the call is out, covers the call's price:
    the server charges a call when it completes, so the lump that arrives
    meanwhile pays for it (the look-ahead is the mean time out the client
    measured, `CallModel.latency_s`). Each call reserves its price on the way
    out, so the balance divided by the price is how many go at once, as many as
    the tokens allow and ``max_in_flight`` bounds. No recharge mode, no burst
    target: while there is work, the balance never sits at the cap. With
    ``learn_costs`` the prices are the ones Keepa charged, and follow them when
    they change. A call dearer than the bucket can hold goes when it is nearly
    full.
    """

    def decide(self, tokens: TokenManager, task: str, cost: float, now: float) -> Wait | None:
        spacing = _spacing(tokens, task, now)
        if spacing is not None:
            return spacing
        ahead = tokens.calls.latency_s or 0.0
        need = min(cost, tokens.cap - tokens.rate)
        if tokens.estimate(now) > 0 and tokens.estimate(now + ahead) >= need:
            return None
        wait = max(tokens.eta(need, now) - ahead, tokens.eta(1e-9, now), 1e-3)
        return Wait(wait, "deficit")

    def after_429(self, tokens: TokenManager, now: float) -> float:
        return tokens.retry_after(now)


POLICIES: dict[str, type] = {"seed": SeedPolicy, "reactive": ReactivePolicy,
                             "adaptive": AdaptivePolicy}
