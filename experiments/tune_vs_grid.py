"""Does `sim tune` with a grid's budget do as well as the grid? Prints both, never asserts.

Runs the default grid (120 points) and `sim tune`'s search with a budget of 120
configs over the same space, both from the ``fixed`` preset at 5 tokens/min,
24 simulated hours, under tune's default constraints. Each side runs on seeds
0..N-1 and confirms its best few on seeds N..2N-1 by the same rule, so the two
winners are compared on the same seeds. The search repeats for each sampler seed.

    python experiments/tune_vs_grid.py [--refill 5] [--hours 24] [--seeds 5] [--samplers 0,1,2]
"""

from __future__ import annotations

import argparse
import itertools

from sim.executors import Pool
from sim.grid import DEFAULT_GRID, parse_axis
from sim.sweep import resolve_base
from sim.tune import CONFIRM, DEFAULT_CONSTRAINTS, Constraint, Problem, search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refill", type=float, default=5.0)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samplers", default="0,1,2")
    args = parser.parse_args()
    axes = tuple(parse_axis(text) for text in DEFAULT_GRID)
    points = [dict(zip([a.name for a in axes], values))
              for values in itertools.product(*(a.values for a in axes))]
    first = tuple(range(args.seeds))
    fresh = tuple(range(args.seeds, 2 * args.seeds))
    pool = Pool(2)
    try:
        problem = Problem(resolve_base("fixed", None, []), args.refill, args.hours,
                          constraints=tuple(map(Constraint.parse, DEFAULT_CONSTRAINTS)),
                          executor=pool)
        grid = problem.confirm(problem.trials(points, first, list(range(len(points)))), fresh,
                               CONFIRM)[0]
        print(f"{len(points)} configs at {args.refill:g} tokens/min, {args.hours:g} h, "
              f"seeds 0..{2 * args.seeds - 1}; deals stored per hour of the winner")
        print(f"  grid              {grid.means['deals_per_hour']:7.3f}  {grid.point}")
        for sampler in map(int, args.samplers.split(",")):
            tuned = search(problem, axes, first, len(points), seed=sampler, progress=False)
            best = problem.confirm(tuned, fresh, CONFIRM)[0]
            ratio = best.means["deals_per_hour"] / grid.means["deals_per_hour"]
            print(f"  tune, sampler {sampler}   {best.means['deals_per_hour']:7.3f}  {best.point}"
                  f"  x{ratio:.3f}")
    finally:
        pool.close()


if __name__ == "__main__":
    main()
