"""``python -m experiments``: run every experiment and write the report.

    python -m experiments [--out results/experiments] [--workers N] [--only 1,3]

Results go under --out: each sweep's rows in ``runs/``, one PNG per figure,
and ``report.md`` with the findings, their tables and figures. Running again
on the same folder redoes no run already stored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector.config import ConfigError
from sim.executors import cores

from . import (e1_spacing, e2_chunking, e3_starvation, e4_diagnostic, e5_burst_target,
               e6_restarts)
from .report import write_report
from .runner import Context

EXPERIMENTS = {1: e1_spacing, 2: e2_chunking, 3: e3_starvation, 4: e4_diagnostic,
               5: e5_burst_target, 6: e6_restarts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments",
                                     description="Reproduce the seed's findings.")
    parser.add_argument("--out", type=Path, default=Path("results/experiments"))
    parser.add_argument("--workers", type=int, default=cores())
    parser.add_argument("--only", default="", help="comma-separated experiment numbers")
    args = parser.parse_args(argv)
    try:
        chosen = [int(n) for n in args.only.split(",") if n] or list(EXPERIMENTS)
        unknown = [n for n in chosen if n not in EXPERIMENTS]
        if unknown or args.workers < 1:
            raise ConfigError(f"no experiment {unknown[0]}" if unknown
                              else "--workers must be at least 1")
        ctx = Context(args.out, workers=args.workers)
        findings = []
        for number in chosen:
            print(f"experiment {number}: {EXPERIMENTS[number].__doc__.splitlines()[0]}",
                  file=sys.stderr)
            findings.append(EXPERIMENTS[number].run(ctx))
        report = write_report(findings, args.out)
    except ConfigError as exc:
        print(f"experiments: error: {exc}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
