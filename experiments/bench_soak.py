"""Soak: ``collector live`` for minutes against the mock Keepa with its faults on.

Serves the mock over HTTP (the code behind ``sim serve``, in this process so
that its books and market can be read) at `--refill` tokens/min, refilled
continuously from an empty bucket, with server errors, dropped connections and
slow calls switched on, and runs ``collector live --preset adaptive`` against
it as a separate process for `--minutes`. Meanwhile it samples the
collector's resident memory (VmRSS in /proc/PID/status) and the backfill
cursor; afterwards it prints the memory over time, the faults the server dealt,
the failures the collector retried (its run stats), and whether the stored
deals and the cursor walked the deal list without a gap. Prints figures, never
asserts (tests/test_soak.py runs a short soak and asserts).

    python experiments/bench_soak.py [--minutes 5] [--refill 4000] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from collector.config import Config, ConfigError
from collector.keepa import DEAL_PAGE_SIZE, SORT_SALES_RANK
from collector.live.sqlite import SQLiteStorage
from collector.pipeline import profitable
from sim.keepa import MarketSettings, ServerSettings
from sim.keepa.server import DROPPED
from sim.serve import start
from sim.settings import Scenario

PRESET = "adaptive"
FAULTS = {"errors": "500:0.03,503:0.03", "drop": 0.03, "slow": 0.02, "slow_s": 3.0}
"""About one call in ten fails or drops, one in fifty takes 3 s longer."""
RETRY = ["--set", "backoff_base_s=0.05", "--set", "backoff_cap_s=1"]
COLLECTOR = [sys.executable, "-c", "from collector.cli import main; main()"]


def rss_kb(pid: int) -> int | None:
    """A process's resident set size in kB (Linux /proc), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def position(db: Path) -> int | None:
    """How far the backfill cursor is into the sales-rank deal list (None: no db yet)."""
    try:
        store = SQLiteStorage(db, readonly=True)
    except ConfigError:
        return None
    try:
        cursor = store.cursor()
    finally:
        store.close()
    return cursor.page * DEAL_PAGE_SIZE + cursor.index


@dataclass
class Soak:
    """What one soak saw."""

    seconds: float
    exit_code: int
    rss: list[tuple[float, int]] = field(default_factory=list)  # (s since start, kB)
    cursors: list[int] = field(default_factory=list)  # the cursor at each sample
    moved_at: float = 0.0  # s since start when the cursor last moved
    stats: dict = field(default_factory=dict)  # the collector's run stats
    outcome: str = ""
    served: dict[str, int] = field(default_factory=dict)  # the server's books by status
    missed: int = 0  # deals before the final cursor never asked for in a /product call
    missing: int = 0  # profitable deals before the final cursor not stored
    stored: int = 0
    twice: int = 0  # deals stored more than once
    stray: int = 0  # stored deals that are not profitable deals of the market
    stderr: str = ""

    def thirds(self) -> tuple[int, int]:
        """The largest RSS of the first third of the samples, and of the last third."""
        values = [kb for _, kb in self.rss]
        third = max(1, len(values) // 3)
        return max(values[:third]), max(values[-third:])

    @property
    def gave_up(self) -> int:
        """Calls that failed past max_retries (their task's next run tries again)."""
        return self.stderr.count(" gave up after ")

    def retries_per_call(self) -> float:
        return self.stats.get("failures", 0) / max(1, self.stats.get("api_calls", 0))


def soak(seconds: float, tmp: Path, *, refill: float = 4000.0, seed: int = 5,
         backlog: int = 20_000, faults: dict | None = None, assignments: list[str] = (),
         every: float = 1.0) -> Soak:
    """Run the live collector against the faulty mock for `seconds`, sampling every `every` s."""
    settings = ServerSettings(rate=refill, initial=0, continuous=True,
                              **(FAULTS if faults is None else faults))
    market = MarketSettings(backlog=backlog, arrivals_per_hour=0)  # a fixed list to walk
    handle = start(Scenario(seed=seed, server=settings, market=market))
    asked: set[str] = set()
    begin = handle.mock.begin

    def recording(path, params, now_ms, body=None):
        if path.strip("/") == "product":
            asked.update(params.get("asin", "").split(","))
        return begin(path, params, now_ms, body)

    handle.mock.begin = recording
    db = tmp / "soak.sqlite"
    command = [*COLLECTOR, "live", "--preset", PRESET, "--api-url", handle.url, "--db", str(db),
               "--duration", f"{seconds:g}", "--quiet", "--set", f"refill_rate={refill:g}",
               *RETRY, *(x for a in assignments for x in ("--set", a))]
    env = {**os.environ, "KEEPA_API_KEY": "soak"}
    try:
        with open(tmp / "soak.err", "w") as err:
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
        began = time.monotonic()
        result = Soak(seconds, 0)
        while proc.poll() is None:
            kb = rss_kb(proc.pid)
            cursor = position(db)
            if kb is not None:
                result.rss.append((time.monotonic() - began, kb))
            if cursor is not None:
                if result.cursors and cursor != result.cursors[-1]:
                    result.moved_at = time.monotonic() - began
                result.cursors.append(cursor)
            time.sleep(every)
        result.exit_code = proc.wait()
        result.stderr = (tmp / "soak.err").read_text()
        with handle.lock:
            seen = [entry.status for entry in handle.journal if entry.path != "token"]
        result.served = {"calls": len(seen), "500": seen.count(500), "503": seen.count(503),
                         "dropped": seen.count(DROPPED), "429": seen.count(429)}
        _check_walk(result, handle, db, asked)
    finally:
        handle.stop()
    return result


def _check_walk(result: Soak, handle, db: Path, asked: set[str]) -> None:
    """Compare the stored deals and the final cursor with the market's deal list."""
    store = SQLiteStorage(db, readonly=True)
    try:
        stored = store.deals()
        run = store.last_run()
    finally:
        store.close()
    result.stats, result.outcome = run.stats, run.outcome
    result.cursors.append(position(db))
    config = Config.load(PRESET)
    market = handle.mock.market
    listing = market.listing(SORT_SALES_RANK)
    good = {a for a in listing if profitable(config, market.deals[a].sell, market.deals[a].buy)}
    walked = listing[:result.cursors[-1]]
    result.missed = len(set(walked) - asked)
    result.missing = len((good & set(walked)) - set(stored))
    result.stored = len(stored)
    result.twice = sum(times > 1 for _, times in stored.values())
    result.stray = len(set(stored) - good)


def report(result: Soak, refill: float) -> str:
    lines = [f"collector live --preset {PRESET} at {refill:g} tokens/min for "
             f"{result.seconds:g} s against a mock with {FAULTS} "
             f"(exit status {result.exit_code}, {result.outcome})",
             "  RSS of the collector, kB, over time:"]
    step = max(1, len(result.rss) // 12)
    lines += [f"    {t:7.1f} s  {kb:8,d}" for t, kb in result.rss[::step]]
    if result.rss:
        first, last = result.thirds()
        lines.append(f"  RSS max, first third {first:,d} kB, last third {last:,d} kB "
                     f"({last / first - 1:+.1%})")
    s = result.stats
    lines += [
        f"  server books          {result.served}",
        f"  collector             {s.get('api_calls', 0):,} calls, {s.get('failures', 0):,} "
        f"failures retried ({result.retries_per_call():.3f} per call), longest run of "
        f"failures {s.get('max_failure_run', 0)}, {s.get('http_429', 0)} x 429",
        f"  tokens                {s.get('tokens_consumed', 0):,.0f} consumed by the "
        f"collector's count",
        f"  backfill walk         cursor at {result.cursors[-1]:,}, last moved at "
        f"{result.moved_at:.0f} s "
        f"({'never went back' if result.cursors == sorted(result.cursors) else 'WENT BACK'}); "
        f"{result.missed} deals before it never fetched, {result.missing} profitable ones "
        f"not stored",
        f"  stored                {result.stored:,} deals, {result.twice} stored twice, "
        f"{result.stray} not profitable",
        f"  stderr                {'Traceback' in result.stderr and 'a traceback' or 'no traceback'}"
        f", {result.gave_up} calls gave up after max_retries"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--refill", type=float, default=4000.0)
    parser.add_argument("--set", dest="assignments", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(args.minutes * 60, Path(tmp), refill=args.refill,
                      assignments=args.assignments, every=2.0)
    print(report(result, args.refill))


if __name__ == "__main__":
    main()
