"""The simulated world's knobs beside the collector's: server and market.

``--set server.initial=50`` and ``--set market.backlog=2000`` reach these; any
other key is the collector's (``collector.config``). One parser for both.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field

from collector.config import Config, ConfigError, coerce, parse_assignment
from sim.keepa import MarketSettings, ServerSettings
from sim.keepa.errors import SettingsError

PREFIXES = ("server", "market")
MARKET_AT_MOST = {"backlog": 10_000_000, "arrivals_per_hour": 1_000_000, "sellers": 10_000_000}
"""A mistyped extra zero or three would otherwise fill the memory before the run starts."""


@dataclass(frozen=True)
class Scenario:
    """Everything outside the collector that one run needs."""

    hours: float = 24.0
    seed: int = 0
    server: ServerSettings = field(default_factory=ServerSettings)
    market: MarketSettings = field(default_factory=MarketSettings)

    def __post_init__(self) -> None:
        if not 0 < self.hours < math.inf:
            raise ConfigError(f"hours: must be > 0 and finite, got {self.hours}")
        if not self.server.rate > 0:
            raise ConfigError(f"refill rate: must be > 0, got {self.server.rate}")
        if not self.market.sellers > 0:
            raise ConfigError("market.sellers: must be > 0")
        for name, most in MARKET_AT_MOST.items():
            if getattr(self.market, name) > most:
                raise ConfigError(f"market.{name}: must be at most {most:,} (memory grows "
                                  "with the market)")
        for name in ("backlog", "arrivals_per_hour", "roughness_min"):
            if getattr(self.market, name) < 0:
                raise ConfigError(f"market.{name}: must be >= 0")
        for name in ("survivor_share", "many_offers_share", "offers_fresh_share",
                     "rating_fresh_share"):
            if not 0 <= getattr(self.market, name) <= 1:
                raise ConfigError(f"market.{name}: must be between 0 and 1")

    def updated(self, changes: dict[str, object]) -> Scenario:
        """Apply ``server.KEY`` / ``market.KEY`` changes (typed or strings)."""
        parts = {p: {} for p in PREFIXES}
        for key, value in changes.items():
            prefix, _, name = key.partition(".")
            parts[prefix][name] = value
        return dataclasses.replace(self, **{
            p: _replace(getattr(self, p), p, parts[p]) for p in PREFIXES if parts[p]})


def _replace(obj, prefix: str, changes: dict[str, object]):
    hints = typing.get_type_hints(type(obj))
    typed = {}
    for name, value in changes.items():
        if name not in hints or name == "rate":
            raise ConfigError(f"unknown config key '{prefix}.{name}'")
        typed[name] = coerce(hints[name], value, f"{prefix}.{name}")
        if isinstance(typed[name], float) and not math.isfinite(typed[name]):
            raise ConfigError(f"{prefix}.{name}: must be a finite number, got {value!r}")
    try:
        return dataclasses.replace(obj, **typed)
    except SettingsError as exc:  # the mock's own error, told the collector's way
        raise ConfigError(str(exc)) from None


def split_overrides(assignments: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """``key=value`` strings → (collector changes, scenario changes)."""
    collector, world = {}, {}
    for text in assignments:
        key, value = parse_assignment(text)
        (world if key.split(".")[0] in PREFIXES else collector)[key] = value
    return collector, world


def plan_refill(given: float | None, preset: str | None, config_file: str | None) -> float:
    """The plan's refill rate: ``--refill`` if given, else the ``refill_rate`` of the
    config file (or preset), so a config written at one rate runs at that rate."""
    return given if given is not None else Config.load(preset, config_file).refill_rate


def build(preset: str | None, config_file: str | None, assignments: Iterable[str],
          refill: float, hours: float, seed: int) -> tuple[Config, Scenario]:
    """The config and scenario that ``sim run``'s options describe."""
    collector_changes, world_changes = split_overrides(assignments)
    config = Config.load(preset, config_file).updated(collector_changes)
    if "refill_rate" not in collector_changes:
        config = config.updated({"refill_rate": refill})
    scenario = Scenario(hours, seed, ServerSettings(rate=refill)).updated(world_changes)
    return config, scenario
