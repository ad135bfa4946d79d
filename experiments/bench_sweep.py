"""How does a sweep scale with workers? Prints runs per second and ratios, never asserts.

Runs the same sweep (by default the default grid at 5 tokens/min, one seed:
120 runs of 24 simulated hours) into a fresh directory with each worker count,
through `run_sweep` and the executors `sim sweep` uses (1 worker runs in
process, more use a process pool), and prints runs per second and the speed-up
over one worker. ``--dask`` adds a dask.distributed LocalCluster of 2 workers.

    python experiments/bench_sweep.py [--workers 1,2] [--seeds 1] [--hours 24] [--dask]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from sim.executors import Dask, executor
from sim.grid import DEFAULT_GRID
from sim.store import Store
from sim.sweep import run_sweep, spec_from_options


def timed(spec, make_executor) -> float:
    """Wall seconds for the whole sweep, pool start-up included."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        pool = make_executor()
        try:
            run_sweep(spec, Store(out), pool, progress=False)
        finally:
            pool.close()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--refill", type=float, default=5.0)
    parser.add_argument("--dask", action="store_true")
    args = parser.parse_args()
    spec = spec_from_options(None, None, [], [], [args.refill], args.hours, args.seeds,
                             DEFAULT_GRID)
    runs = len(spec.jobs())
    print(f"default grid at {args.refill:g} tokens/min, {args.seeds} seed(s), "
          f"{args.hours:g} h: {runs} runs")
    rates = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        wall = timed(spec, lambda: executor(workers, None))
        rates[workers] = runs / wall
        print(f"  {workers} worker(s)        {wall:6.1f} s   {rates[workers]:6.2f} runs/s   "
              f"x{rates[workers] / next(iter(rates.values())):.2f}")
    if args.dask:
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
            wall = timed(spec, lambda: Dask(cluster.scheduler_address))
        print(f"  dask, 2 workers    {wall:6.1f} s   {runs / wall:6.2f} runs/s   "
              f"x{runs / wall / next(iter(rates.values())):.2f}")


if __name__ == "__main__":
    main()
