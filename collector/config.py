"""Every knob of the collector in one typed, validated object.

A `Config` is immutable. It is built from a named preset, optionally a TOML
file (whose ``[collector]`` table may name a ``preset`` to start from) and
``key=value`` overrides, and it can be written back to TOML so that a config
found by ``sim tune`` runs unchanged under ``collector live``.

The named starting points are in ``collector.presets``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w


class ConfigError(ValueError):
    """A config value, key, preset or file is not acceptable (one-line message)."""


@dataclass(frozen=True)
class StepRule:
    """A number chosen by the refill rate, written ``"80<10,280"``.

    That text reads "80 below 10 tokens/min, else 280"; steps are checked in
    order, so ``"40<10,100<20,150"`` is a three-tier rule and ``"80"`` a constant.
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
                f"bad rule {text!r}: expected e.g. '80<10,280' (80 below 10/min, else 280)"
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
        return ",".join([f"{_num(v)}<{_num(b)}" for b, v in self.steps] + [_num(self.default)])


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _knob(default, help: str, check: str = "", choices: tuple = ()):
    """A config field; `check` is one of '', '>0', '>=0'."""
    return field(default=default, metadata={"help": help, "check": check, "choices": choices})


@dataclass(frozen=True)
class Config:
    """The collector's knobs. Times are seconds, costs tokens, rates tokens/minute."""

    # -- token policy --------------------------------------------------------
    policy: str = _knob("seed", "token policy: the seed's threshold rules, react to 429s only, "
                        "or adaptive (spend as tokens come, on learned prices)",
                        choices=("seed", "reactive", "adaptive"))
    refill_rate: float = _knob(5.0, "refill rate assumed until the first response envelope", ">0")
    initial_estimate: float = _knob(100.0, "balance assumed until the first envelope (seed: 100)")
    min_interval_s: float = _knob(1.0, "minimum spacing between two calls of one task", ">=0")
    min_token_threshold: float = _knob(
        20.0, "a call is allowed only while the pre-call estimate is at least this; "
        "below it the manager enters recharge mode")
    burst_threshold: StepRule = _knob(
        StepRule.parse("80<10,280"), "recharge target as a rule over the refill rate")
    max_deficit: float | None = _knob(None, "optional floor on the post-call estimate (e.g. -180)")
    low_cost_release: float | None = _knob(
        None, "while recharging, a call reserving at most low_cost_max goes once the estimate "
        "is at least this (the seed's later low-cost buffer: 20); unset: off")
    low_cost_max: float = _knob(10.0, "the dearest call low_cost_release lets through", ">=0")
    recharge_timeout_s: float | None = _knob(
        3600.0, "leave recharge mode after this long whatever the balance (seed: 3600)", ">0")
    max_wait_s: float | None = _knob(None, "longest single wait a task accepts", ">0")
    on_long_wait: str = _knob("sleep", "when a wait exceeds max_wait_s: sleep it out, or abort "
                              "the run and let the schedule retry", choices=("sleep", "abort"))
    wait_429: str = _knob(
        "balance", "how long a 429 waits before sending the same request again: until the "
        "projected balance is positive, +100 ms; the next refill (refillIn) +100 ms, as "
        "Keepa's Java client; or the next refill +1 s + the deficit at the refill rate, as "
        "the community Python client's time_to_refill",
        choices=("balance", "refill", "refill-deficit"))
    poll_interval_s: float = _knob(30.0, "while waiting, re-check the balance this often", ">0")
    poll_token_endpoint: bool = _knob(True, "while waiting, ask /token (free) instead of "
                                      "trusting the projection")
    sync_on_start: bool = _knob(True, "every task run starts with a /token call")
    learn_costs: bool = _knob(False, "reserve what calls of each kind were really charged "
                              "(tokensConsumed), not the *_reserved guesses, once one answered")
    max_in_flight: int = _knob(
        1, "calls in flight at once on the key; the backfiller and the recent run work on "
        "this many chunks or batches at once (Keepa sets no limit; its Java client uses 4)", ">0")
    # -- backfiller ----------------------------------------------------------
    backfill_period_s: float = _knob(1800.0, "backfiller schedule period (seed: */30)", ">0")
    chunk_size: int = _knob(4, "deals per backfill chunk (one commit each)", ">0")
    batch_size: int = _knob(4, "ASINs per peek/full-fetch call within a chunk", ">0")
    scan_batch_size: StepRule | None = _knob(
        None, "deals per backfill chunk, peeked in one call, as a rule over the refill rate "
        "(the Smart Ingestor's SCAN_BATCH_SIZE); unset: chunk_size and batch_size", ">0")
    commit_batch_size: int | None = _knob(
        None, "ASINs per full-fetch call of a chunk's peek survivors (the Smart Ingestor's "
        "COMMIT_BATCH_SIZE); unset: all of a peek's survivors in one call", ">0")
    trigger_recent_after_chunk: bool = _knob(
        False, "queue a recent-deals run after every backfill chunk (the seed's bug 3)")
    deal_page_reserved: float = _knob(10.0, "tokens reserved for a backfill /deal page", ">=0")
    peek_reserved_per_asin: float = _knob(2.0, "tokens reserved per ASIN for a peek", ">=0")
    full_reserved_per_asin: float = _knob(20.0, "tokens reserved per ASIN for a full fetch", ">=0")
    seller_reserved: float = _knob(1.0, "tokens reserved for a /seller lookup", ">=0")
    peek_filter: bool = _knob(
        True, "full-fetch only the deals whose peek passes the filter (the seed skipped this "
        "until commit 21d4d2b, so its presets full-fetch every peeked deal)")
    seller_lookup: bool = _knob(True, "look up the buy-box seller of every stored deal")
    seller_cache_s: float | None = _knob(
        None, "look a seller up again only this long after its last lookup; unset: for "
        "every deal, as the seed did", ">0")
    seller_batch_size: int = _knob(1, "seller ids per /seller lookup, up to 100 (the seed "
                                   "looked up one at a time)", ">0")
    peek_offers: int = _knob(20, "offers parameter of the peek (0 = none)", ">=0")
    peek_stats_days: int = _knob(90, "stats window of the peek, days", ">0")
    peek_rating: bool = _knob(True, "rating=1 on the peek")
    full_offers: int = _knob(20, "offers parameter of the full fetch (0 = none)", ">=0")
    full_days: int = _knob(365, "history window of the full fetch, days", ">0")
    # -- profitability filter over the peek ------------------------------------
    filter_min_sell_cents: int = _knob(1200, "reject deals that sell (90-day avg) below this", ">=0")
    filter_min_roi: float = _knob(0.2, "reject deals whose gross ROI is below this")
    # -- recent-deals updater --------------------------------------------------
    recent_period_s: float = _knob(900.0, "recent-deals schedule period (seed: */15)", ">0")
    recent_sort: int = _knob(
        1, "sortType of the recent run's /deal pages: 1 newest first; the seed sent 4 (largest "
        "percent drop) believing it meant last update", choices=(1, 2, 3, 4, -2, -3, -4))
    recent_max_deals: int = _knob(20, "most new deals one recent run takes", ">0")
    recent_max_pages: int = _knob(50, "most /deal pages one recent run reads", ">0")
    recent_batch_size: int = _knob(1, "ASINs per full-fetch call of the recent run", ">0")
    recent_page_reserved: float = _knob(15.0, "tokens reserved per recent /deal page (5+10)", ">=0")
    recent_max_interval_s: float | None = _knob(
        None, "the recent run paces itself: it reads the list once a page of new deals is "
        "expected at the rate it measured, or this long after its last read; unset: every "
        "period", ">0")
    recent_same_minute: bool = _knob(
        False, "also take the deals stamped in the watermark's own minute: Keepa's times are "
        "minutes, so those listed in that minute after the last read are otherwise skipped "
        "for good (the seed stopped at them); the known ones cost nothing")
    recent_peek: bool = _knob(False, "peek and filter the recent run's new deals before the full "
                              "fetch, as the backfiller does (the seed's updater did not)")
    # -- refresher of stored deals -----------------------------------------------
    refresh_period_s: float | None = _knob(
        None, "refresher schedule period; unset: no refresher (the seed had none)", ">0")
    refresh_age_s: float = _knob(3600.0, "refresh stored deals whose data is older than this", ">0")
    refresh_offers_age_s: float = _knob(
        86400.0, "a refresh fetches offers too when the deal's offers are older than this", ">0")
    refresh_batch_size: int = _knob(20, "ASINs per refresh call", ">0")
    refresh_max_deals: int = _knob(1000, "most deals one refresher run refreshes", ">0")
    refresh_floor: float = _knob(
        0.0, "a refresh call goes only while the estimate is at least this, so new deals "
        "keep the tokens below it")
    refresh_reserved_per_asin: float = _knob(1.0, "tokens reserved per ASIN for a light refresh "
                                             "(the full fetch's reservation with offers)", ">=0")
    # -- scheduler, overheads and retries -------------------------------------
    workers: int = _knob(4, "worker slots (Celery concurrency)", ">0")
    dispatch_overhead_s: float = _knob(0.5, "time to start a task run", ">=0")
    chunk_overhead_s: float = _knob(1.5, "fixed time per chunk besides calls (seed sleeps)", ">=0")
    commit_overhead_s: float = _knob(0.5, "time per storage commit", ">=0")
    max_retries: int | None = _knob(5, "retries of a 5xx or network failure before giving up; "
                                    "unset: retry for ever", ">=0")
    backoff_base_s: float = _knob(1.0, "first backoff after a 5xx or network failure", ">0")
    backoff_cap_s: float = _knob(60.0, "longest backoff", ">0")
    backoff: str = _knob(
        "jittered", "backoff after the n-th failure in a row: base x 2^(n-1) x a random 0.5-1, "
        "or base x (2^n - 1) exactly (Keepa's Java client: 0.1, 0.3, 0.7 s ...); both capped",
        choices=("jittered", "cumulative"))

    def __post_init__(self) -> None:
        hints = _hints()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = hints[f.name]
            ok = {
                int: isinstance(value, int) and not isinstance(value, bool),
                float: isinstance(value, (int, float)) and not isinstance(value, bool),
                bool: isinstance(value, bool),
                str: isinstance(value, str),
                StepRule: isinstance(value, StepRule),
            }
            base = _base_type(kind)
            if value is None and _optional(kind):
                continue
            if not ok[base]:
                raise ConfigError(f"{f.name}: expected {base.__name__}, got {value!r}")
            numbers = value.values() if base is StepRule else [value] if base in (int, float) else []
            for x in numbers:
                if math.isnan(x):
                    raise ConfigError(f"{f.name}: must be a number, got nan")
                if f.metadata["check"] == ">0" and not x > 0:
                    raise ConfigError(f"{f.name}: must be > 0, got {_num(x)}")
                if f.metadata["check"] == ">=0" and not x >= 0:
                    raise ConfigError(f"{f.name}: must be >= 0, got {_num(x)}")
            if f.name in BATCH_KNOBS and max(numbers) > 100:
                raise ConfigError(f"{f.name}: Keepa takes at most 100 ids a call, got {value}")
            if f.name in BATCH_KNOBS and not all(float(x).is_integer() for x in numbers):
                raise ConfigError(f"{f.name}: must be whole numbers of ids, got {value}")
            if f.name in OFFERS_KNOBS and value and not 20 <= value <= 100:
                raise ConfigError(f"{f.name}: Keepa takes 0 (no offers) or 20 to 100, got {value}")
            if f.metadata["choices"] and value not in f.metadata["choices"]:
                raise ConfigError(
                    f"{f.name}: must be one of {', '.join(map(str, f.metadata['choices']))}, "
                    f"got {value!r}")

    # -- building ------------------------------------------------------------
    @classmethod
    def load(cls, preset: str | None = None, file: str | Path | None = None,
             overrides: typing.Iterable[str] = (), default: str | None = None) -> Config:
        """Preset (else the file's, else `default`), then TOML file, then ``key=value``
        overrides, each on top of the last."""
        table: dict = {}
        if file is not None:
            table = read_toml_table(file, "collector")
        named = table.pop("preset", None)
        from .presets import DEFAULT_PRESET, preset_config  # the presets are Configs

        config = preset_config(preset or named or default or DEFAULT_PRESET)
        config = config.updated(table)
        return config.updated(dict(parse_assignment(o) for o in overrides))

    def updated(self, changes: dict) -> Config:
        """A copy with `changes` (values as strings or typed) applied and validated."""
        hints = _hints()
        typed = {}
        for key, value in changes.items():
            if key not in hints:
                raise ConfigError(f"unknown config key {key!r}")
            typed[key] = coerce(hints[key], value, key)
        return dataclasses.replace(self, **typed)

    def to_dict(self) -> dict:
        """Every knob as a plain TOML value; an unset optional knob is ``"none"``
        (TOML has no null), which `updated` reads back as unset."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = ("none" if value is None
                           else str(value) if isinstance(value, StepRule) else value)
        return out

    def to_toml(self, header: str = "") -> str:
        lines = [f"# {line}" for line in header.splitlines()]
        return "\n".join(lines + [tomli_w.dumps({"collector": self.to_dict()})])

    def burst_target(self, rate: float) -> float:
        return self.burst_threshold.at(rate)

    def chunk_at(self, rate: float) -> int:
        """Deals per backfill chunk at the refill rate `rate`."""
        if self.scan_batch_size is None:
            return self.chunk_size
        return int(self.scan_batch_size.at(rate))

    def peek_batch_at(self, rate: float) -> int:
        """ASINs per backfill peek at the refill rate `rate` (a scan batch is one peek)."""
        return self.batch_size if self.scan_batch_size is None else self.chunk_at(rate)



OFFERS_KNOBS = ("peek_offers", "full_offers")
"""Knobs sent as /product's ``offers``, which Keepa answers 405 outside 20..100."""
BATCH_KNOBS = ("batch_size", "recent_batch_size", "refresh_batch_size", "seller_batch_size",
               "scan_batch_size", "commit_batch_size")
"""Ids per call, which Keepa caps at 100 for /product and /seller."""


@functools.cache
def _hints() -> dict[str, object]:
    return typing.get_type_hints(Config)


def _optional(kind) -> bool:
    return type(None) in typing.get_args(kind)


def _base_type(kind):
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return args[0] if args else kind


def keys() -> list[str]:
    """Every config key, in declaration order."""
    return [f.name for f in dataclasses.fields(Config)]


def describe(key: str) -> str:
    return next(f.metadata["help"] for f in dataclasses.fields(Config) if f.name == key)


def coerce(kind, value, key: str):
    """Turn a TOML value or command-line string into the knob's type."""
    base = _base_type(kind)
    if isinstance(value, str):
        text = value.strip()
        if _optional(kind) and text.lower() in ("", "none", "off"):
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
        return StepRule.parse(value)
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


def read_toml_table(path: str | Path, table: str) -> dict:
    """The named table of a TOML file, as a dict; a one-line error if unreadable."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    section = data.get(table, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [{table}] must be a table")
    return dict(section)
