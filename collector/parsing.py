"""Knob values as they are written: rules over the refill rate, ``key=value`` text and
TOML tables, and the one error every bad value, key, preset or file raises.

`collector.config` builds its `Config` with these; `sim.settings` reads the
simulated world's knobs with the same `coerce`, so both are written alike.
"""

from __future__ import annotations

import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """A config value, key, preset or file is not acceptable (one-line message)."""


@dataclass(frozen=True)
class StepRule:
    """A number chosen by the refill rate, written ``"50<20,150"``.

    That text reads "50 below 20 tokens/min, else 150"; steps are checked in
    order, so ``"40<10,100<20,150"`` is a three-tier rule and ``"50"`` a constant.
    """

    steps: tuple[tuple[float, float], ...]
    default: float

    @classmethod
    def parse(cls, text: str | int | float) -> StepRule:
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            return cls((), float(text))
        parts = [p.strip() for p in str(text).split(",")]
        try:
            steps = []
            for part in parts[:-1]:
                value, below = part.split("<")
                steps.append((float(below), float(value)))
            default = float(parts[-1])
        except ValueError:
            raise ConfigError(
                f"bad rule {text!r}: expected e.g. '50<20,150' (50 below 20/min, else 150)"
            ) from None
        rates = [below for below, _ in steps]
        if rates != sorted(rates) or len(set(rates)) != len(rates):
            raise ConfigError(f"bad rule {text!r}: rate bounds must increase")
        return cls(tuple(steps), default)

    def at(self, rate: float) -> float:
        for below, value in self.steps:
            if rate < below:
                return value
        return self.default

    def values(self) -> list[float]:
        return [v for _, v in self.steps] + [self.default]

    def __str__(self) -> str:
        steps = [f"{num_text(v)}<{num_text(b)}" for b, v in self.steps]
        return ",".join(steps + [num_text(self.default)])


def num_text(x: float) -> str:
    """A number as a knob's text: whole numbers without a decimal point."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def is_optional(kind) -> bool:
    """Whether a knob's type admits None (unset)."""
    return type(None) in typing.get_args(kind)


def base_type(kind):
    """A knob's type without its None."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return args[0] if args else kind


def coerce(kind, value, key: str):
    """Turn a TOML value or command-line string into the knob's type."""
    base = base_type(kind)
    if isinstance(value, str):
        text = value.strip()
        if is_optional(kind) and text.lower() in ("", "none", "off"):
            return None
        try:
            if base is bool:
                if text.lower() not in _BOOLS:
                    raise ValueError
                return _BOOLS[text.lower()]
            if base is int:
                return int(text)
            if base is float:
                return float(text)
        except ValueError:
            raise ConfigError(f"{key}: expected {base.__name__}, got {value!r}") from None
    if base is StepRule and not isinstance(value, StepRule):
        try:
            return StepRule.parse(value)
        except ConfigError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


_BOOLS = {"true": True, "yes": True, "on": True, "1": True,
          "false": False, "no": False, "0": False}


def parse_assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"expected key=value, got {text!r}")
    return key.strip(), value


TABLES = ("collector", "experiment")
"""The tables a config file may hold: the collector's knobs, and an experiment's plan."""


def read_toml_table(path: str | Path, table: str) -> dict:
    """The named table of a TOML file, as a dict; a one-line error if unreadable, or if
    the file holds a value outside any table or a table not in `TABLES` (a misspelt
    ``[colector]`` would otherwise be ignored, and its knobs with it)."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    for name, value in data.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {name} is outside any table; knobs go under "
                              f"[{table}]")
        if name not in TABLES:
            raise ConfigError(f"{path}: unknown table [{name}]; expected "
                              + " or ".join(f"[{t}]" for t in TABLES))
    return dict(data.get(table, {}))
