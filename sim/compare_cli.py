"""The ``sim compare`` command: presets side by side at every plan (`sim.compare`).

It runs on the sweep's machinery (`run_stored`: `run_sweep`, `Store`, the
executors and the sweep's ``--workers``/``--scheduler`` options), so it shows the same progress
bar and resumes the same way: started again on the same ``--out``, it skips
the runs stored there.
"""

from __future__ import annotations

import click

from collector.presets import PRESETS
from sim import compare as comparing
from sim.sweep_cli import (FORMAT_OPTION, SEEDS, executor_options, out_option,
                           parse_refills, run_stored)


@click.command("compare")
@click.option("--refill", "refill_text", required=True,
              help="Refill rates, tokens/minute: 5,20,60,250,1000,4000, or a range such as "
              "5:4000:x2.")
@click.option("--presets", "presets_text", metavar="NAME,NAME...",
              help="Presets to compare, in this order [default: every preset, "
              + ", ".join(PRESETS) + "].")
@click.option("--hours", type=float, default=24.0, show_default=True,
              help="Simulated hours per run.")
@click.option("--seeds", type=click.IntRange(min=1), default=SEEDS, show_default=True,
              help="Runs per preset and rate (seeds 0..N-1, the same for every preset); "
              "intervals need 2 or more.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="server.KEY=... and market.KEY=... set the world of every run; a collector "
              "knob is set in every preset, over the preset's own value (repeatable).")
@out_option("compare")
@executor_options
@FORMAT_OPTION
def compare(refill_text, presets_text, hours, seeds, assignments, out, workers, scheduler,
            fmt) -> None:
    """Run every preset at every refill rate on the same seeds and worlds; print the
    table, write it as CSV and plot the fraction of the bound against the rate."""
    refills = parse_refills(refill_text)
    comparison = comparing.Comparison.from_options(presets_text, assignments, refills, hours,
                                                   seeds)
    store = run_stored(comparison, out, "compare", refills, workers, scheduler)
    text, paths = comparing.report(comparison, store.table(), store.root, fmt)
    click.echo(text)
    click.echo(f"runs: {store.root}/results.parquet and results.csv; table and plot: "
               + ", ".join(p.name for p in paths))
