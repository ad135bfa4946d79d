"""``collector status``: what a collector is doing, read from its database.

What the seed's pause diagnostic should have been. Nothing here decides a
token rule: the report rebuilds the run's `TokenManager` from the saved config
and belief and asks it (mode, estimate, target, ETA to the target), then asks
the run's policy whether a call could go now (DEVELOPERS.md rule 4). The
database is opened read-only, so this works while a collector runs.
"""

from __future__ import annotations

import math
import time
from typing import Any

from collector.keepa import KEEPA_EPOCH_MINUTES
from collector.config import Config
from collector.policies import POLICIES
from collector.tokens import RECHARGING, TokenManager

from .sqlite import STALE_S, SQLiteStorage


def report(db: str, now: float | None = None) -> dict[str, Any]:
    """The status of the collector database `db` at `now` (epoch seconds)."""
    now = time.time() if now is None else now
    storage = SQLiteStorage(db, readonly=True)
    try:
        with storage.snapshot():
            cursor, watermark = storage.cursor(), storage.watermark()
            out: dict[str, Any] = {
                "db": db, "deals_stored": storage.count(),
                "by_source": storage.count_by_source(),
                "cursor": {"page": cursor.page, "index": cursor.index}, "watermark": watermark,
                "watermark_lag_min": None if watermark is None
                else now / 60 - KEEPA_EPOCH_MINUTES - watermark,
                "alive": False, "run": None, "tokens": None}
            run = storage.last_run()
            # from the deals themselves, not the counters of the last heartbeat (up to
            # 2 s old, so "0 by this run" beside deals it had already stored)
            new = None if run is None else storage.count_since(run.started_at)
    finally:
        storage.close()
    if run is None:
        return out
    alive = out["alive"] = run.ended_at is None and now - run.heartbeat_at < STALE_S
    # a run that is over was up until it ended, or (killed) until its last heartbeat
    until = now if alive else run.ended_at or run.heartbeat_at
    out["run"] = {"id": run.id, "pid": run.pid, "started_at": run.started_at,
                  "up_s": until - run.started_at, "heartbeat_age_s": now - run.heartbeat_at,
                  "ended_at": run.ended_at, "outcome": run.outcome, "api_url": run.api_url,
                  "domain": run.domain, **run.stats, "new_deals": new}
    if run.stats.get("last_call_at") is not None:
        out["run"]["last_call_age_s"] = now - run.stats["last_call_at"]
    if run.belief is not None:
        config = Config().updated(run.config)
        tokens = TokenManager.restore(config, run.belief)
        state = tokens.state(now).as_dict()
        state["next_call_s"] = state["next_call_reason"] = None  # no collector, no call
        if alive:
            wait = POLICIES[config.policy]().decide(tokens, "status", 0.0, now)
            state["next_call_s"] = 0.0 if wait is None else wait.seconds
            state["next_call_reason"] = None if wait is None else wait.reason
        out["tokens"] = state
    return out


def render(status: dict[str, Any]) -> str:
    run, tokens = status["run"], status["tokens"]
    lines = [f"database    {status['db']}"]
    if run is None:
        lines.append("collector   never ran on this database")
    elif status["alive"]:
        lines.append(f"collector   alive: run {run['id']}, pid {run['pid']}, "
                     f"up {_span(run['up_s'])}, heartbeat {_ago(run['heartbeat_age_s'])}")
    elif run["ended_at"] is not None:
        lines.append(f"collector   not running: run {run['id']} {run['outcome']}, "
                     f"{_ago(run['heartbeat_age_s'])}")
    else:
        lines.append(f"collector   not running: run {run['id']} (pid {run['pid']}) stopped "
                     f"heartbeating {_ago(run['heartbeat_age_s'])} without ending (killed?)")
    if tokens is not None:
        mode = tokens["mode"] if status["alive"] else f"stopped while {tokens['mode']}"
        lines.append(
            f"tokens      {mode}: estimate {tokens['estimate']:,.0f}, target "
            f"{tokens['target']:,.0f}, recharge below {tokens['min_threshold']:,.0f}, "
            f"refill {tokens['rate']:g}/min")
        if not status["alive"]:
            lines.append("next burst  none: the collector is not running")
        else:
            eta = "now (spending)" if tokens["mode"] != RECHARGING else _when(tokens["eta_s"])
            resume = ("now" if tokens["next_call_reason"] is None
                      else f"{_when(tokens['next_call_s'])} ({tokens['next_call_reason']})")
            lines.append(f"next burst  {eta}; next call {resume}")
    if run is not None and "last_call_age_s" in run:
        lines.append(f"last call   {_ago(run['last_call_age_s'])}: {run['last_call']}")
    by_source = ", ".join(f"{k} {v:,}" for k, v in sorted(status["by_source"].items()))
    lines.append(f"deals       {status['deals_stored']:,} stored"
                 + (f" ({by_source})" if by_source else "")
                 + (f"; {run['new_deals']:,} first stored by run {run['id']}" if run else ""))
    cursor = status["cursor"]
    lines.append(f"cursor      page {cursor['page']}, index {cursor['index']}")
    lag = status["watermark_lag_min"]
    lines.append("watermark   " + ("not set yet" if lag is None
                                   else f"{_span(lag * 60)} behind now"))
    if run is not None and "api_calls" in run:
        lines.append(f"calls       {run['api_calls']:,} this run, {run['http_429']:,} x 429, "
                     f"{run['failures']:,} failed, {run['tokens_consumed']:,.0f} tokens consumed")
    return "\n".join(lines)


def _when(seconds: float) -> str:
    return "never (target above the cap)" if math.isinf(seconds) else f"in {_span(seconds)}"


def _span(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _ago(seconds: float) -> str:
    return f"{_span(seconds)} ago"
