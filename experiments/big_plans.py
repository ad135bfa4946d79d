"""Issue 11's first check: does a config from ``sim tune`` spend a big plan?

For each plan it runs ``sim tune`` from ``experiments/configs/big_plan.toml`` over
``max_in_flight`` and the batch sizes, in a world whose market offers more than
the plan can buy (new deals arrive faster than the tokens can take them), then
runs the winner on three fresh seeds and prints its token utilization, its
fraction of the bound, what binds and its 429s. Takes about 10 minutes on 2
cores, most of it at 4000 tokens/min.

    python experiments/big_plans.py [--refill 250,1000,4000] [--out results/big-plans]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

BASE = Path(__file__).parent / "configs" / "big_plan.toml"
WORLDS = {  # refill -> (hours, new deals an hour): more deals than the plan's tokens buy
    250.0: (2.0, 20_000), 1000.0: (2.0, 60_000), 4000.0: (1.0, 200_000)}
GRID = ["max_in_flight=1:16:x2", "batch_size+chunk_size+recent_batch_size=25,50,100"]
FRESH_SEEDS = (100, 101, 102)


def sim(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"sim {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refill", default="250,1000,4000")
    parser.add_argument("--out", default="results/big-plans")
    parser.add_argument("--budget", type=int, default=12)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for refill in (float(r) for r in args.refill.split(",")):
        hours, arrivals = WORLDS[refill]
        world = ["--set", f"market.arrivals_per_hour={arrivals}"]
        winner = out / f"tune-refill{refill:g}.toml"
        print(f"sim tune at {refill:g} tokens/min ...", file=sys.stderr, flush=True)
        sim("tune", "--refill", f"{refill:g}", "--base", str(BASE), "--hours", f"{hours:g}",
            "--seeds", "2", "--budget", str(args.budget), "--confirm", "0", "--out", str(winner),
            *(x for g in GRID for x in ("--grid", g)), *world)
        for seed in FRESH_SEEDS:
            s = json.loads(sim("run", "--config", str(winner), "--refill", f"{refill:g}",
                               "--hours", f"{hours:g}", "--seed", str(seed), "--json", *world))
            rows.append((refill, seed, s))
    print("| refill | seed | deals/h | token_utilization | fraction_of_bound | bound_by | 429s |"
          "\n|---|---|---|---|---|---|---|")
    for refill, seed, s in rows:
        print(f"| {refill:g} | {seed} | {s['deals_per_hour']:,.0f} | {s['token_utilization']:.3f}"
              f" | {s['fraction_of_bound']:.3f} | {s['bound_by']} | {s['http_429']} |")
    for refill in dict.fromkeys(r for r, _, _ in rows):
        tuned = (out / f"tune-refill{refill:g}.toml").read_text()
        picked = [line for line in tuned.splitlines()
                  if line.split(" =")[0] in ("max_in_flight", "batch_size")]
        print(f"winner at {refill:g}/min: {', '.join(picked)}")


if __name__ == "__main__":
    main()
