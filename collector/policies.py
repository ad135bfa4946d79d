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
    reason: str  # "spacing", "recharge", "recovery" or "deficit"
    recheck_s: float = math.inf  # look again this soon all the same (V7's staged waits)


class TokenPolicy(Protocol):
    def decide(self, tokens: TokenManager, task: str, cost: float, now: float) -> Wait | None:
        """None lets a call reserving `cost` go now."""

    def after_429(self, tokens: TokenManager, now: float) -> float:
        """Seconds to wait before retrying a request the server refused."""


def _spacing(tokens: TokenManager, task: str, now: float) -> Wait | None:
    last = tokens.last_call.get(task)
    left = -math.inf if last is None else last + tokens.config.min_interval_s - now
    return Wait(left, "spacing") if left > 0 else None


FLOOR_STAGE = 10.0
"""From an estimate of 0 or less the seed's V7 first recovers to 10 tokens (seed-system.md
§2.1, step 5), whatever the call."""


class SeedPolicy:
    """The TokenManager rules of 2026-02-08 (seed-system.md §2.1, V7).

    While recharging, wait until the estimate reaches the burst target (or
    the recharge timeout passes). Then keep each task's calls `min_interval_s`
    apart. A call is allowed while the pre-call estimate is at least
    `min_token_threshold`, whatever it costs; below it, enter recharge mode.
    An optional `max_deficit` keeps the post-call estimate above a floor, and
    an optional `low_cost_release` ends recharge early for a cheap call (the
    later rules, §2.2 V12 and V17).

    V7's own tiers are knobs: with `recharge_below_rate` set, recharge mode is
    entered and honoured only below that rate (a flag set earlier stays set,
    ignored, as V7's Redis flag did); at and above it a call the threshold
    stops waits to recover (`_recovery_wait`). `recharge` off lifts the
    threshold altogether.
    """

    def decide(self, tokens: TokenManager, task: str, cost: float, now: float) -> Wait | None:
        config = tokens.config
        recharges = config.recharge and (config.recharge_below_rate is None
                                         or tokens.rate < config.recharge_below_rate)
        if recharges and tokens.mode == RECHARGING:
            wait = self._recharge_wait(tokens, cost, now)
            if wait is not None:
                return wait
            tokens.set_mode(SPENDING, now)
        spacing = _spacing(tokens, task, now)
        if spacing is not None:
            return spacing
        estimate = tokens.estimate(now)
        if config.recharge and estimate < config.min_token_threshold:
            if recharges:
                tokens.set_mode(RECHARGING, now)
                return self._recharge_wait(tokens, cost, now)
            wait = self._recovery_wait(tokens, cost, now)
            if wait is not None:
                return wait
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
        target = tokens.target()
        eta = tokens.eta(target, now)
        if eta <= 0 or left <= 0 or (config.low_cost_release is not None
                                     and cost <= config.low_cost_max
                                     and tokens.estimate(now) >= config.low_cost_release):
            return None
        stage = _stage(tokens, target, (config.min_token_threshold,), now)
        return Wait(min(eta, left), "recharge", stage)  # even for a cheap call

    @staticmethod
    def _recovery_wait(tokens: TokenManager, cost: float, now: float) -> Wait | None:
        """Below the threshold where recharge is off (V7 at 10/min and above): with
        `priority_pass` a call of at most `low_cost_max` goes if its post-call estimate is
        not negative, else waits for its cost (for `FLOOR_STAGE` from 0 or less); any
        other call waits for the threshold plus `recovery_buffer`."""
        config, have = tokens.config, tokens.estimate(now)
        if config.priority_pass and cost <= config.low_cost_max:
            if have - cost >= 0:
                return None
            need = cost if have > 0 else max(cost, FLOOR_STAGE)
            return Wait(tokens.eta(need, now), "recovery")
        need = config.min_token_threshold + config.recovery_buffer
        return Wait(tokens.eta(need, now), "recovery", _stage(tokens, need, (), now))

    def after_429(self, tokens: TokenManager, now: float) -> float:
        return tokens.retry_after(now)


def _stage(tokens: TokenManager, need: float, stages: tuple[float, ...], now: float) -> float:
    """How soon a wait for `need` looks again besides its polls. With ``belief =
    "last-reading"`` V7 waits in stages, each timed on its own: to `FLOOR_STAGE` from 0
    or less, then to each of `stages` below `need`; the call waits for `need` all the
    same, only the polls move. Otherwise never (inf)."""
    if tokens.config.belief != "last-reading":
        return math.inf
    have = tokens.estimate(now)
    for stage in ((FLOOR_STAGE,) if have <= 0 else ()) + stages:
        if have < stage < need:
            return tokens.eta(stage, now)
    return math.inf


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
