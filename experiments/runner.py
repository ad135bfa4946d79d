"""What every experiment shares: its TOML, its sweep, its figures, its finding.

An experiment is a TOML file in ``experiments/configs`` (a ``[collector]``
table, the base config as ``sim run --config`` reads it, and an
``[experiment]`` table naming the grid, refill rates, hours and seeds) plus a
module that turns the sweep's table into a `Finding`: figures, a table and
the figures measured. Sweeps go through ``sim.sweep``, so a report run again
on the same results folder redoes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from collector.config import read_toml_table
from sim.executors import executor
from sim.grid import parse_axis
from sim.store import Store
from sim.sweep import Spec, aggregate, resolve_base, run_sweep

CONFIGS = Path(__file__).parent / "configs"


@dataclass
class Context:
    """Where results go and how hard to work."""

    out: Path
    workers: int = 2
    seeds: int | None = None  # override every experiment's seed count (tests use fewer)
    hours: float | None = None
    progress: bool = True


@dataclass
class Finding:
    """One experiment's outcome, for the report and for the tests."""

    number: int
    title: str
    question: str
    answer: str
    measured: dict[str, float]
    table: str
    figures: list[Path] = field(default_factory=list)


def sweep(ctx: Context, name: str, extra_grid: tuple[str, ...] = (), *, preset: str | None = None,
          refills: tuple[float, ...] | None = None):
    """Run (or resume) the sweep `configs/NAME.toml` describes; returns (table, spec)."""
    path = CONFIGS / f"{name}.toml"
    plan = read_toml_table(path, "experiment")
    spec = Spec(resolve_base(preset, str(path), ()),
                tuple(parse_axis(g) for g in (*plan["grid"], *extra_grid)),
                tuple(float(r) for r in (refills or plan["refills"])),
                float(ctx.hours or plan["hours"]), tuple(range(ctx.seeds or plan["seeds"])))
    tag = f"{name}-{preset}" if preset else name
    store = Store(ctx.out / "runs" / tag)
    pool = executor(ctx.workers, None)
    try:
        run_sweep(spec, store, pool, ctx.progress)
    finally:
        pool.close()
    return store.table(), spec


def means(table, by: list[str], metrics: list[str]):
    """Per point: each metric's mean and 95 % half-interval over the seeds."""
    return aggregate(table, by, metrics)


def markdown(frame, columns: dict[str, str], digits: int = 2) -> str:
    """A DataFrame's chosen columns as a Markdown table, with readable headers."""
    rows = ["| " + " | ".join(columns.values()) + " |",
            "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        cells = []
        for key in columns:
            value = row[key]
            cells.append(f"{value:,.{digits}f}" if isinstance(value, float) else str(value))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


REFILL = {"refill": "refill (tokens/min)"}
THROUGHPUT = {"deals_per_hour": "deals stored/h", "deals_per_hour_ci": "± 95 %"}
"""Table headers every sweep experiment shows."""


def throughput(ax, x, rows, **style) -> None:
    """Deals stored per hour with the seeds' 95 % interval, on a labelled axis."""
    ax.errorbar(x, rows["deals_per_hour"], yerr=rows["deals_per_hour_ci"], capsize=3, **style)
    ax.set_ylabel("deals stored per hour (mean, 95 % interval)")


def save(fig, ctx: Context, name: str) -> Path:
    path = ctx.out / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
