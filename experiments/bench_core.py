"""How fast is a simulated day? Prints ratios, never asserts (the machine is shared).

Runs 24 simulated hours of seed-after at 5 tokens/min several times, counts the
SimPy events one run processes, and times a bare SimPy loop that processes the
same number of timeouts, so the overhead of the collector and the mock shows
as one ratio that a noisy machine does not move much.

    python experiments/bench_core.py [--repeat 5] [--refill 5] [--hours 24]
"""

from __future__ import annotations

import argparse
import statistics
import time

import simpy

from sim.engine import simulate
from sim.settings import build


def count_events(config, scenario) -> int:
    counted = 0
    step = simpy.Environment.step

    def counting_step(env):
        nonlocal counted
        counted += 1
        step(env)

    simpy.Environment.step = counting_step
    try:
        simulate(config, scenario)
    finally:
        simpy.Environment.step = step
    return counted


def bare_loop(events: int) -> float:
    env = simpy.Environment()

    def proc():
        for _ in range(events):
            yield env.timeout(1)

    env.process(proc())
    start = time.perf_counter()
    env.run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--refill", type=float, default=5.0)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--preset", default="seed-after")
    args = parser.parse_args()
    config, scenario = build(args.preset, None, [], args.refill, args.hours, 0)
    simulate(config, scenario)  # warm-up: imports and caches
    walls = [simulate(config, scenario).summary["wall_s"] for _ in range(args.repeat)]
    events = count_events(config, scenario)
    bare = statistics.median(bare_loop(events) for _ in range(args.repeat))
    wall = statistics.median(walls)
    simulated = args.hours * 3600
    print(f"{args.preset}, {args.refill:g} tokens/min, {args.hours:g} h simulated, "
          f"median of {args.repeat}")
    print(f"  wall per run          {wall:.3f} s (min {min(walls):.3f}, max {max(walls):.3f})")
    print(f"  simulated : wall      {simulated / wall:,.0f} : 1")
    print(f"  SimPy events per run  {events:,}")
    print(f"  bare SimPy loop       {bare:.4f} s for the same number of events")
    print(f"  ours : bare           {wall / bare:.1f} x")


if __name__ == "__main__":
    main()
