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
import typing
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from .parsing import (ConfigError, StepRule, base_type, coerce, is_optional, num_text,
                      parse_assignment, read_toml_table)

__all__ = ["BATCH_KNOBS", "OFFERS_KNOBS", "Config", "ConfigError", "StepRule", "coerce",
           "describe", "keys", "parse_assignment", "read_toml_table"]


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
        "below it the manager enters recharge mode (> 0 while recharge is on)")
    burst_threshold: StepRule = _knob(
        StepRule.parse("80<10,280"), "recharge target as a rule over the refill rate")
    max_deficit: float | None = _knob(None, "optional floor on the post-call estimate (e.g. -180)")
    low_cost_release: float | None = _knob(
        None, "while recharging, a call reserving at most low_cost_max goes once the estimate "
        "is at least this (the seed's later low-cost buffer: 20); unset: off")
    low_cost_max: float = _knob(10.0, "the dearest call low_cost_release and priority_pass "
                                "let through", ">=0")
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
    recharge: bool = _knob(
        True, "the seed policy's recharge mode: below min_token_threshold a call waits for the "
        "burst target; false: the threshold stops no call (spacing and max_deficit remain)")
    recharge_below_rate: float | None = _knob(
        None, "recharge mode is entered and honoured only below this refill rate (the seed's "
        "V7: 10); at and above it a call finding less than min_token_threshold waits for "
        "min_token_threshold + recovery_buffer, or goes by priority_pass; unset: every rate",
        ">0")
    priority_pass: bool = _knob(
        False, "where recharge_below_rate turns recharge off, a call reserving at most "
        "low_cost_max goes below min_token_threshold if its post-call estimate is >= 0 (V7)")
    recovery_buffer: float = _knob(
        0.0, "where recharge_below_rate turns recharge off, a call the threshold stops waits "
        "until the estimate is min_token_threshold plus this (V7: 5)", ">=0")
    spacing_from: str = _knob(
        "start", "min_interval_s is counted from when the task's last call left, or from when "
        "its answer came (the seed's V7 stamped after the response, and not at all when "
        "tokensLeft was 0)", choices=("start", "end"))
    belief: str = _knob(
        "projected", "the estimate: the last reading plus the refill since (a lump a minute "
        "at refillIn's phase), the rate from every envelope; or last-reading, as the seed's "
        "V7: the last tokensLeft as is (a 0 not applied), the rate from /token only, waits of "
        "(target - estimate) / rate polled in two stages, to min_token_threshold, then to the "
        "burst target", choices=("projected", "last-reading"))
    on_429: str = _knob(
        "retry", "a /product or /seller call answered 429: wait (wait_429) and send it again, "
        "or drop it, as the seed's fetch functions did: a refused peek or full fetch loses "
        "its deals, a refused seller lookup its seller; /deal pages are always retried",
        choices=("retry", "drop"))
    yield_turn: bool = _knob(
        False, "a call waiting for its tokens steps aside, at each poll, for a call that goes "
        "first in turn (new deals before the backlog, the backlog before refreshes); off: "
        "the call that asked first keeps the turn until its tokens come")
    batch_refill_s: float | None = _knob(
        None, "ids per call: at most what this many seconds of refill buy at the learned "
        "price per id (at least one), within the batch sizes set; deals per backfill chunk "
        "likewise, at the peek's price; so a call never waits long for its tokens, nor holds "
        "the others up; unset: the batch sizes set", ">0")
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
    peek_batch_size: int | None = _knob(
        None, "ASINs per backfill peek, set apart from the full fetch: a peek's survivors are "
        "then full-fetched batch_size at a time (commit_batch_size if set), as the Smart "
        "Ingestor peeks 50 and commits in fives; a peek never spans chunks, so raise "
        "chunk_size with it; unset: peeks of batch_size, or scan_batch_size's chunk", ">0")
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
    seller_lookup_all: bool = _knob(
        False, "look up the seller of every full-fetched deal, not only of those that pass "
        "the filter (the seed's backfiller)")
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
    recent_read_share: float | None = _knob(
        None, "a run that paces itself also reads the list once a read costs at most this "
        "share of the refill since the last read (a page's price over share x rate), so "
        "big plans read it often and small ones rarely; unset: off", ">0")
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
    # -- janitor of stored deals ---------------------------------------------------
    janitor_ttl_s: float | None = _knob(
        None, "delete the stored deals not seen for this long (seen: stored, refreshed, or "
        "listed on a /deal page the collector read; the seed's janitor: 259200, 72 h); no "
        "tokens; unset: no janitor, deals stay for ever", ">0")
    janitor_period_s: float = _knob(14400.0, "janitor schedule period (seed: every 4 h)", ">0")
    # -- deployment ------------------------------------------------------------
    restart_every_s: float | None = _knob(
        None, "the collector crashes and restarts this often (the simulator's worker "
        "restarts): its memory and any uncommitted chunk are lost, the storage and the "
        "shared token state kept, and beat starts again; unset: never", ">0")
    deploy_every_s: float | None = _knob(
        None, "a deploy this often: a restart that also wipes the token state and forces a "
        "recharge pause (the seed's deploy_update.sh); unset: never", ">0")
    restart_random: bool = _knob(
        False, "restarts and deploys come at random (exponential intervals with those means, "
        "each from its own random stream) instead of like clockwork")
    checkpoint: str = _knob(
        "chunk", "when the backfiller saves its cursor: after every chunk (the seed from "
        "39aa065) or only after a whole page of 150 deals (before it); deals are stored "
        "per chunk either way", choices=("chunk", "page"))
    cursor_ratchet: bool = _knob(
        True, "a backfill cursor behind the stored one is not written, so runs that overlap "
        "(lock_ttl_s) never move it back; false: the last commit's cursor stands, as the "
        "seed's code wrote it")
    # -- scheduler, overheads and retries -------------------------------------
    workers: int = _knob(4, "worker slots (Celery concurrency)", ">0")
    processes: int = _knob(
        1, "collector processes on the key, each running one task run at a time with its own "
        "client, belief and in-memory state (Celery prefork, seed: 4); above 1 they are the "
        "worker slots and workers is not used; 1: one process runs up to workers runs at once",
        ">0")
    shared_belief: bool = _knob(
        True, "with processes above 1, the processes share one token belief, as the seed's "
        "Redis keys: reservations subtract from it, every reading overwrites it (the last "
        "writer wins), one recharge flag; false: each process believes on its own")
    lock_ttl_s: float | None = _knob(
        None, "a task's lock expires this long after its run started, so a run that outlives "
        "it lets a second instance of the task start (the seed's lock TTLs: 3600 s backfill, "
        "1800 s recent); unset: the lock is held until the run ends", ">0")
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
            base = base_type(kind)
            if value is None and is_optional(kind):
                continue
            if not ok[base]:
                raise ConfigError(f"{f.name}: expected {base.__name__}, got {value!r}")
            numbers = value.values() if base is StepRule else [value] if base in (int, float) else []
            for x in numbers:
                if not math.isfinite(x):
                    raise ConfigError(f"{f.name}: must be a finite number, got {x}")
                if f.metadata["check"] == ">0" and not x > 0:
                    raise ConfigError(f"{f.name}: must be > 0, got {num_text(x)}")
                if f.metadata["check"] == ">=0" and not x >= 0:
                    raise ConfigError(f"{f.name}: must be >= 0, got {num_text(x)}")
            if f.name in BATCH_KNOBS and max(numbers) > 100:
                raise ConfigError(f"{f.name}: Keepa takes at most 100 ids a call, got {value}")
            if f.name in BATCH_KNOBS and not all(float(x).is_integer() for x in numbers):
                raise ConfigError(f"{f.name}: must be whole numbers of ids, got {value}")
            if f.name in AT_MOST and value > AT_MOST[f.name]:
                raise ConfigError(f"{f.name}: must be at most {AT_MOST[f.name]}, got {value}")
            if f.name in OFFERS_KNOBS and value and not 20 <= value <= 100:
                raise ConfigError(f"{f.name}: Keepa takes 0 (no offers) or 20 to 100, got {value}")
            if f.metadata["choices"] and value not in f.metadata["choices"]:
                raise ConfigError(
                    f"{f.name}: must be one of {', '.join(map(str, f.metadata['choices']))}, "
                    f"got {value!r}")
        if self.recharge and self.min_token_threshold <= 0:
            raise ConfigError(
                "min_token_threshold: must be > 0 while recharge is on (Keepa refuses a call "
                "at a balance of 0 or less; recharge=false lifts the threshold), got "
                f"{num_text(self.min_token_threshold)}")
        if self.belief == "last-reading" and not self.poll_token_endpoint:
            raise ConfigError("belief: last-reading sees the refill only on /token, so it "
                              "needs poll_token_endpoint=true (it would wait for ever)")

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
        """ASINs per backfill peek at the refill rate `rate`: ``peek_batch_size``, else a
        scan batch is one peek, else ``batch_size``."""
        if self.peek_batch_size is not None:
            return self.peek_batch_size
        return self.batch_size if self.scan_batch_size is None else self.chunk_at(rate)

    def full_batch(self) -> int | None:
        """ASINs per full-fetch call of a backfill peek's survivors: ``commit_batch_size``;
        else ``batch_size`` once ``peek_batch_size`` sets the peek apart; else None, all
        of a peek's survivors in one call."""
        if self.commit_batch_size is None and self.peek_batch_size is not None:
            return self.batch_size
        return self.commit_batch_size



OFFERS_KNOBS = ("peek_offers", "full_offers")
"""Knobs sent as /product's ``offers``, which Keepa answers 405 outside 20..100."""
BATCH_KNOBS = ("batch_size", "recent_batch_size", "refresh_batch_size", "seller_batch_size",
               "scan_batch_size", "commit_batch_size", "peek_batch_size")
"""Ids per call, which Keepa caps at 100 for /product and /seller."""
AT_MOST = {"max_in_flight": 1000, "processes": 1000}
"""Far above any plan's use; a mistyped 10**9 would otherwise build that many lanes."""


@functools.cache
def _hints() -> dict[str, object]:
    return typing.get_type_hints(Config)


def keys() -> list[str]:
    """Every config key, in declaration order."""
    return [f.name for f in dataclasses.fields(Config)]


def describe(key: str) -> str:
    return next(f.metadata["help"] for f in dataclasses.fields(Config) if f.name == key)
