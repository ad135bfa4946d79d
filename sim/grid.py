"""The knob space of a sweep: axes parsed from ``--grid KEY=VALUES``.

One axis names one or more keys (``batch_size+chunk_size`` sets both to the
same value) and lists their values: ``1,2,4``, a geometric range ``1:64:x2``,
an arithmetic range ``0:60:+15``, or a mix (``0,1:16:x2``). A value holding a
``<`` (a step rule such as ``80<10,280``) contains commas itself, so such a
list is separated by ``;`` instead: ``burst_threshold=80<10,280;40<10,100``.

Only the text is checked here; `sim.sweep` builds every point's config before
any run starts, so an unknown key or a value that fails validation is
rejected up front with the config's own one-line message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from collector.config import ConfigError

LIMIT = 10_000  # values one range may expand to; a typo such as 1:1e9:+1 is refused


@dataclass(frozen=True)
class Axis:
    """Keys swept together and their values, as the text `build()` accepts."""

    keys: tuple[str, ...]
    values: tuple[str, ...]
    geometric: bool = False  # given as an xFACTOR range: plot and search it on a log scale

    @property
    def name(self) -> str:
        return "+".join(self.keys)

    def assignments(self, value: str) -> list[str]:
        return [f"{key}={value}" for key in self.keys]

    def numbers(self) -> list[float] | None:
        """The values as numbers, or None when any is not a plain number."""
        try:
            return [float(v) for v in self.values]
        except ValueError:
            return None


def parse_axis(text: str) -> Axis:
    """``KEY[+KEY...]=VALUES`` → an Axis; a one-line ConfigError naming the flag if malformed."""
    name, sep, values = text.partition("=")
    keys = tuple(k.strip() for k in name.split("+"))
    try:
        if not sep or not all(keys):
            raise ConfigError("expected KEY=VALUES, e.g. chunk_size=1,2,4 or chunk_size=1:64:x2")
        if len(set(keys)) != len(keys):
            raise ConfigError("a key is named twice")
        parsed, geometric = parse_values(values)
    except ConfigError as exc:
        raise ConfigError(f"--grid {text}: {exc}") from None
    return Axis(keys, tuple(parsed), geometric)


def parse_values(text: str) -> tuple[list[str], bool]:
    """A value list (see the module docstring) → (values, whether it is one geometric range)."""
    separator = ";" if ";" in text or "<" in text else ","
    items = [item.strip() for item in text.split(separator)]
    if items == [""]:
        raise ConfigError("empty list of values")
    if "" in items:
        raise ConfigError(f"empty value in the list (values are separated by '{separator}')")
    values: list[str] = []
    for item in items:
        values += _expand(item) if ":" in item and "<" not in item else [item]
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ConfigError(f"value {repeated[0]} is listed twice")
    geometric = len(items) == 1 and ":x" in items[0].replace(" ", "")
    return values, geometric


def _expand(item: str) -> list[str]:
    """``start:stop:xFACTOR`` or ``start:stop:+STEP``, both ends included when reached."""
    usage = f"bad range {item!r}: expected start:stop:xFACTOR (1:64:x2) or start:stop:+STEP"
    parts = [p.strip() for p in item.split(":")]
    if len(parts) != 3 or parts[2][:1] not in ("x", "+"):
        raise ConfigError(usage)
    try:
        start, stop, step = (float(p) for p in (parts[0], parts[1], parts[2][1:]))
    except ValueError:
        raise ConfigError(usage) from None
    if not all(math.isfinite(x) for x in (start, stop, step)) or stop < start:
        raise ConfigError(f"bad range {item!r}: need finite start <= stop")
    integral = all(_is_int(p) for p in (parts[0], parts[1], parts[2][1:]))
    if parts[2][0] == "x":
        if not (start > 0 and step > 1):
            raise ConfigError(f"bad range {item!r}: a geometric range needs start > 0, factor > 1")
        count = math.floor(math.log(stop / start, step) + 1e-9) + 1
        values = [start * step**i for i in range(min(count, LIMIT + 1))]
    else:
        if not step > 0:
            raise ConfigError(f"bad range {item!r}: the step must be > 0")
        count = math.floor((stop - start) / step + 1e-9) + 1
        values = [start + step * i for i in range(min(count, LIMIT + 1))]
    if count > LIMIT:
        raise ConfigError(f"range {item!r} expands to more than {LIMIT:,} values")
    return [str(round(v)) if integral else f"{v:.10g}" for v in values]


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


DEFAULT_GRID = (
    "batch_size+chunk_size=1:16:x2",  # the seed: 1 before its fix, 4 after
    "min_interval_s=0,1,10,30,60,120",  # the seed: 60 before, 1 after
    "burst_threshold=40,80,160,280",  # the seed: 80 below 10 tokens/min, else 280
)
"""What ``sim sweep`` sweeps when no ``--grid`` is given: the knobs of the seed's fix."""
IN_FLIGHT_AXIS = "max_in_flight=1,2,4,8"
IN_FLIGHT_FROM = 60.0  # tokens/min: from here on one call at a time cannot spend a plan


def default_grid(refills) -> tuple[str, ...]:
    """The default grid for these refill rates: at 60 tokens/min and above, with
    ``max_in_flight`` too, since one call at a time leaves such plans' tokens unspent."""
    if max(refills, default=0.0) >= IN_FLIGHT_FROM:
        return (*DEFAULT_GRID, IN_FLIGHT_AXIS)
    return DEFAULT_GRID
