"""Does the simulator's cost follow the work? Prints ratios, never asserts (the machine is shared).

Runs the `fixed` preset for `--hours` simulated hours at refill 5, 60, 600 and
4000 tokens/min against backlogs of 5k, 50k and 500k deals, and prints per run
the wall time per simulated day and per API call (the summary's `api_calls`),
the same net of building the market (timed apart: it has a target of its own),
the SimPy events it processed and the ratio to a bare SimPy loop of as many
events (`bench_core`'s count and loop). Then the market's build time per 100k
deals, and issue 11's targets as ratios measured in this one run: the cost per
call of the largest market over the smallest at each rate, net and gross of the
build (at most 2x), the build (at most 50 ms per 100k deals) and ours:bare per
event at 5 and 600/min (at most 10x and 15x).

Each grid point runs twice (timed, then counted), so the default grid of 24
simulated hours takes a few minutes on a shared core; ``--hours 6`` is quicker.
Extra ``--set`` assignments reach every run (``--set max_in_flight=8``,
``--set market.arrivals_per_hour=2000``), ``--preset`` changes the base.

    python -m experiments.bench_scale [--hours 24] [--preset fixed] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

from experiments.bench_core import bare_loop, count_events
from sim.engine import START_MS, simulate
from sim.keepa import DealMarket, MarketSettings
from sim.settings import build

REFILLS = (5, 60, 600, 4000)
BACKLOGS = (5_000, 50_000, 500_000)


def build_ms_per_100k(backlog: int, repeat: int) -> float:
    """The median time to build a market of `backlog` deals, per 100k deals."""
    walls = []
    for seed in range(repeat):
        start = time.perf_counter()
        DealMarket(MarketSettings(backlog=backlog), seed, START_MS)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls) * 1000 * 100_000 / backlog


def measure(preset: str, assignments: list[str], refill: int, backlog: int,
            hours: float) -> dict:
    config, scenario = build(preset, None, [f"market.backlog={backlog}", *assignments],
                             refill, hours, 0)
    start = time.perf_counter()
    DealMarket(scenario.market, scenario.seed, START_MS)
    build_s = time.perf_counter() - start
    summary = simulate(config, scenario).summary
    events = count_events(config, scenario)
    wall, calls = summary["wall_s"], max(1, summary["api_calls"])
    return {"refill": refill, "backlog": backlog, "per_day_s": wall * 24 / hours,
            "calls": summary["api_calls"], "per_call_ms": 1000 * wall / calls,
            "net_ms": 1000 * (wall - build_s) / calls,
            "events": events, "ours_bare": wall / bare_loop(events)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--preset", default="fixed")
    parser.add_argument("--set", dest="assignments", action="append", default=[],
                        metavar="KEY=VALUE", help="a knob for every run (repeatable)")
    parser.add_argument("--refills", default=",".join(map(str, REFILLS)))
    parser.add_argument("--backlogs", default=",".join(map(str, BACKLOGS)))
    args = parser.parse_args()
    refills = [int(r) for r in args.refills.split(",")]
    backlogs = [int(b) for b in args.backlogs.split(",")]
    simulate(*build(args.preset, None, args.assignments, refills[0], 1.0, 0))  # warm-up
    print(f"{args.preset} {' '.join(args.assignments)}, {args.hours:g} h simulated, seed 0")
    print(f"{'refill':>6} {'backlog':>8} {'s/day':>7} {'calls':>6} {'ms/call':>8} "
          f"{'net':>7} {'events':>7} {'ours:bare':>9}")
    rows = []
    for refill in refills:
        for backlog in backlogs:
            row = measure(args.preset, args.assignments, refill, backlog, args.hours)
            rows.append(row)
            print(f"{refill:>6} {backlog:>8,} {row['per_day_s']:>7.3f} {row['calls']:>6} "
                  f"{row['per_call_ms']:>8.3f} {row['net_ms']:>7.3f} {row['events']:>7,} "
                  f"{row['ours_bare']:>8.1f}x",
                  flush=True)
    largest = max(backlogs)
    print(f"market build: {build_ms_per_100k(largest, 3):.1f} ms per 100k deals "
          f"(backlog {largest:,}; target <= 50)")
    smallest = min(backlogs)
    for refill in refills:
        at = {r["backlog"]: r for r in rows if r["refill"] == refill}
        net = at[largest]["net_ms"] / at[smallest]["net_ms"]
        gross = at[largest]["per_call_ms"] / at[smallest]["per_call_ms"]
        print(f"cost per call at {refill}/min, backlog {largest:,} : {smallest:,}: "
              f"{net:.2f}x net of the build, {gross:.2f}x with it (target <= 2)")
    for refill, target in ((5, 10), (600, 15)):
        ratios = [r["ours_bare"] for r in rows if r["refill"] == refill]
        if ratios:
            print(f"ours:bare per event at {refill}/min: {min(ratios):.1f}x to {max(ratios):.1f}x "
                  f"over the backlogs (target <= {target})")


if __name__ == "__main__":
    main()
