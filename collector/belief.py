"""One token belief shared by several collector processes, as the seed kept it in Redis.

The seed's processes kept the bucket in Redis keys (seed-system.md §1.8):
``keepa_tokens_left`` (a reservation is an INCRBYFLOAT of minus its cost, and the
reserving process goes on with the result; every sync and every answer SETs it
to the ``tokensLeft`` just read, so the last writer wins and wipes out what the
other processes reserved meanwhile), ``keepa_refill_rate``,
``keepa_recharge_mode_active`` and ``keepa_recharge_start_time``.

`SharedBelief` is those keys: the reading (balance, when, the refill phase and
rate), and the mode with its start. `SharedTokenManager` is a `TokenManager`
whose reading and mode live there instead of in the instance, so every rule of
``collector.tokens`` applies unchanged: a reservation reads the shared balance,
projects it and writes back the result in one step (the runtime is
cooperative, so that step is as atomic as INCRBYFLOAT), and `observe`
overwrites it. What stays per process is what the seed kept per instance: the
spacing clock (``last_call``), the calls in flight and the learned prices.
A single process never uses this: its plain `TokenManager` is the whole belief.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config
from .events import Observer
from .tokens import SPENDING, TokenManager


@dataclass
class SharedBelief:
    """The shared keys, as the first process initialised them."""

    rate: float
    balance: float
    as_of: float
    next_refill: float | None = None
    read_at: float | None = None
    mode: str = SPENDING
    recharge_since: float | None = None

    @classmethod
    def initial(cls, config: Config, now: float) -> SharedBelief:
        return cls(config.refill_rate, config.initial_estimate, now)


def _key(field: str) -> property:
    """An attribute of the manager that reads and writes the shared key `field`."""
    def get(self: SharedTokenManager):
        return getattr(self.shared, field)

    def put(self: SharedTokenManager, value) -> None:
        setattr(self.shared, field, value)

    return property(get, put)


class SharedTokenManager(TokenManager):
    """A process's `TokenManager` on the `SharedBelief` of its deployment."""

    rate = _key("rate")
    _balance = _key("balance")
    _as_of = _key("as_of")
    _next_refill = _key("next_refill")
    _read_at = _key("read_at")
    mode = _key("mode")
    recharge_since = _key("recharge_since")

    def __init__(self, shared: SharedBelief, config: Config, observer: Observer | None = None,
                 now: float = 0.0):
        self.shared = shared
        held = dict(shared.__dict__)
        super().__init__(config, observer, now)
        shared.__dict__.update(held)  # a process starting later finds the keys as they are
