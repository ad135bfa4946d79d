"""The ``sim sweep``, ``sim plot`` and ``sim tune`` commands (``sim compare``: compare_cli).

Pandas, matplotlib, optuna and dask are imported inside the commands, so
``sim run`` starts as fast as before.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from collector.cli_support import config_options
from collector.config import ConfigError
from collector.presets import PRESETS
from sim import compare as comparing
from sim import tune as tuning
from sim.executors import cores, executor
from sim.grid import DEFAULT_GRID, IN_FLIGHT_AXIS, default_grid, parse_axis, parse_values
from sim.settings import PREFIXES, plan_refill
from sim.store import Store
from sim.sweep import METRIC, Spec, aggregate, resolve_base, run_sweep, spec_from_options

SEEDS = 5
TOP = 5


def parse_refills(text: str) -> list[float]:
    """``--refill 5``, ``5,20,60`` or a range → rates (checked > 0 when the runs are built)."""
    try:
        values, _ = parse_values(text)
        return [float(v) for v in values]
    except ConfigError as exc:
        raise ConfigError(f"--refill {text}: {exc}") from None
    except ValueError:
        raise ConfigError(f"--refill {text}: expected tokens/minute, e.g. 5 or 5,20,60") from None


FORMAT_OPTION = click.option("--format", "fmt", type=click.Choice(["png", "svg"]),
                             default="png", show_default=True, help="Plot file format.")


def out_option(kind: str):
    """``--out``, the results directory `run_stored` fills and resumes."""
    return click.option("--out", type=click.Path(file_okay=False),
                        help=f"Results directory [default: results/{kind}-refillR]. Started "
                        f"again on the same directory, the {kind} skips the runs already "
                        "stored.")


def executor_options(func):
    """``--workers`` and ``--scheduler``, the same on `sweep` and `tune`."""
    func = click.option("--scheduler", metavar="ADDRESS",
                        help="Run on this existing Dask cluster (e.g. tcp://host:8786) instead "
                        "of local processes; its workers need this package installed.")(func)
    func = click.option("--workers", type=click.IntRange(min=1), default=cores(),
                        show_default="this machine's cores",
                        help="Local worker processes (1 runs everything in this process).")(func)
    return func


@click.command()
@config_options()
@click.option("--refill", "refill_text",
              help="Refill rate(s), tokens/minute: 5, a list 5,20,60, or a range [default: "
              "the config file's refill_rate; 5 for every preset].")
@click.option("--grid", multiple=True, metavar="KEY=VALUES",
              help="Sweep a knob (repeatable): chunk_size=1,2,4, a range 1:64:x2 (geometric) "
              "or 0:60:+15 (arithmetic); a+b=VALUES sets both keys alike; separate step rules "
              "with ';' (burst_threshold='80<10,280;280'). Default: "
              + "  ".join(DEFAULT_GRID) + f", and {IN_FLIGHT_AXIS} at 60 tokens/min and above.")
@click.option("--hours", type=float, default=24.0, show_default=True,
              help="Simulated hours per run.")
@click.option("--seeds", type=click.IntRange(min=1), default=SEEDS, show_default=True,
              help="Replications per point (seeds 0..N-1); intervals need 2 or more.")
@out_option("sweep")
@executor_options
@FORMAT_OPTION
@click.option("--plots/--no-plots", default=True, show_default=True,
              help="Draw the plots after the runs.")
@click.option("--top", type=click.IntRange(min=1), default=TOP, show_default=True,
              help="Best configs listed per refill rate.")
def sweep(preset, config_file, assignments, refill_text, grid, hours, seeds, out, workers,
          scheduler, fmt, plots, top) -> None:
    """Run a grid of configs at one or more refill rates; store, rank and plot the results."""
    refills = (parse_refills(refill_text) if refill_text is not None
               else [plan_refill(None, preset, config_file)])
    spec = spec_from_options(preset, config_file, assignments, grid, refills, hours, seeds,
                             default_grid(refills))
    store = run_stored(spec, out, "sweep", refills, workers, scheduler)
    table = store.table()
    click.echo(best_configs(table, spec, top))
    click.echo(f"results: {store.root}/results.parquet and results.csv ({len(table)} runs)")
    if plots:
        _draw(table, spec, store.root, fmt)


def run_stored(spec, out: str | None, kind: str, refills, workers: int,
               scheduler: str | None) -> Store:
    """Build and check every run of `spec` before a worker starts, then run what the
    results directory (`out`, default ``results/KIND-refillR``) does not hold yet on
    the executor the options ask for; the directory's `Store`."""
    spec.jobs()
    store = Store(out or Path("results") / f"{kind}-refill{'-'.join(f'{r:g}' for r in refills)}")
    pool = executor(workers, scheduler)
    try:
        run_sweep(spec, store, pool)
    finally:
        pool.close()
    return store


@click.command()
@click.argument("results", type=click.Path(file_okay=False))
@FORMAT_OPTION
@click.option("--top", type=click.IntRange(min=1), default=TOP, show_default=True,
              help="Best configs listed per refill rate.")
def plot(results, fmt, top) -> None:
    """Redraw a sweep's plots (and its best-configs table) from its saved results, or a
    ``sim compare`` folder's table and plot."""
    store = Store(results)
    manifest = store.manifest()
    compared = isinstance(manifest, dict) and manifest.get("kind") == comparing.KIND
    try:
        loaded = comparing.load(results) if compared else Spec.from_manifest(manifest)
    except (KeyError, TypeError, AttributeError):
        raise ConfigError(f"{store.root}: its sweep.json is not a sweep's manifest") from None
    if compared:
        text, paths = comparing.report(*loaded, store.root, fmt)
        click.echo(text)
        click.echo(f"table and plot: {', '.join(p.name for p in paths)} in {store.root}")
        return
    spec = loaded
    table = store.table()
    click.echo(best_configs(table, spec, top))
    _draw(table, spec, store.root, fmt)


def _draw(table, spec, root: Path, fmt: str) -> None:
    from sim.plots import draw_all

    click.echo("drawing plots (re-running the best and worst runs for the sawtooth)",
               err=True)
    paths = draw_all(table, spec, root, fmt)
    click.echo(f"plots: {', '.join(p.name for p in paths)} in {root}")


def best_configs(table, spec, top: int) -> str:
    """The best points per refill rate by mean deals per hour, with their other figures."""
    metrics = [METRIC, "http_429", "freshness_p95_s", "max_gap_s", "token_utilization",
               "fraction_of_bound"]
    points = aggregate(table, ["refill", *spec.knobs], metrics)
    lines = [f"best configs by deals stored per hour (mean of {len(spec.seeds)} seeds "
             f"± 95 % interval), {spec.hours:g} simulated hours"]
    for refill, rows in points.groupby("refill", sort=False):
        rows = rows.sort_values(METRIC, ascending=False, kind="stable").head(top)
        shown = rows[[axis.keys[0] for axis in spec.axes]].copy()
        shown.columns = [axis.name for axis in spec.axes]
        shown["deals/h"] = [f"{m:.2f} ± {c:.2f}" if c == c else f"{m:.2f}"
                            for m, c in zip(rows[METRIC], rows[f"{METRIC}_ci"])]
        shown["429s"] = rows["http_429"].round(1)
        shown["fresh p95 min"] = (rows["freshness_p95_s"] / 60).round(0)
        shown["max gap min"] = (rows["max_gap_s"] / 60).round(0)
        shown["tokens used"] = (rows["token_utilization"] * 100).round(1).astype(str) + " %"
        shown["of bound"] = (rows["fraction_of_bound"] * 100).round(1).astype(str) + " %"
        lines += ["", f"{refill:g} tokens/min", shown.to_string(index=False)]
    return "\n".join(lines)


@click.command()
@click.option("--refill", type=float, help="The plan's refill rate, tokens/minute [default: "
              "the --base file's refill_rate; 5 for every preset].")
@click.option("--base", default="fixed", show_default=True,
              help="Starting config: a preset (" + ", ".join(PRESETS) + ") or a TOML file. "
              "Knobs outside the search keep its values. The seed's own presets page recent "
              "deals in the wrong order (recent_sort=4), which keeps recent-deal freshness "
              "far above the default bound.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override one knob of the base (repeatable).")
@click.option("--grid", multiple=True, metavar="KEY=VALUES",
              help="Search space, written as sweep grids (repeatable): numbers span least to "
              "greatest along the grid's own spacing, other values are a choice. Default: the "
              "sweep's default grid, " + "  ".join(DEFAULT_GRID) + f", and {IN_FLIGHT_AXIS} at 60 "
              "tokens/min and above.")
@click.option("--objective", default="deals_per_hour", show_default=True,
              help="Summary metric to optimise (its mean over the seeds).")
@click.option("--minimize", is_flag=True, help="Minimise the objective instead of maximising.")
@click.option("--constraint", "constraints", multiple=True, metavar="METRIC<=BOUND",
              help="Keep a metric's mean within a bound (repeatable; >= and == too). Given, "
              "it replaces the defaults: " + ", ".join(tuning.DEFAULT_CONSTRAINTS)
              + ": no 429s, 95 % of new deals stored within 2 h of listing, never an hour "
              "without storing a deal; bounds a 5 tokens/min plan can meet.")
@click.option("--budget", type=click.IntRange(min=1), default=100, show_default=True,
              help="Distinct configs to try.")
@click.option("--seeds", type=click.IntRange(min=1), default=SEEDS, show_default=True,
              help="Runs per config (seeds 0..N-1); the means decide.")
@click.option("--confirm", type=click.IntRange(min=0), default=tuning.CONFIRM, show_default=True,
              help="Run this many best configs again on N fresh seeds before naming the "
              "winner, whose figures are then over 2N seeds (0: no second round).")
@click.option("--hours", type=float, default=24.0, show_default=True,
              help="Simulated hours per run.")
@click.option("--seed", "sampler_seed", type=int, default=0, show_default=True,
              help="Seed of the search itself.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Write the winner here as TOML [default: results/tune-refillR.toml]; "
              "sim run --config and collector live --config read it.")
@executor_options
def tune(refill, base, assignments, grid, objective, minimize, constraints, budget, seeds,
         confirm, hours, sampler_seed, out, workers, scheduler) -> None:
    """Search for the config with the best objective under constraints, show it beside
    the seed's presets, and write it as TOML."""
    preset, config_file = (base, None) if base in PRESETS else (None, base)
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"--base {base}: neither a preset ({', '.join(PRESETS)}) nor a file")
    refill = plan_refill(refill, preset, config_file)
    axes = tuple(parse_axis(text) for text in (grid or default_grid([refill])))
    checks = tuple(tuning.Constraint.parse(c)
                   for c in (constraints or tuning.DEFAULT_CONSTRAINTS))
    problem = tuning.Problem(resolve_base(preset, config_file, assignments), refill, hours,
                             objective, not minimize, checks)
    problem.check()
    problem.spec({}, (0,)).jobs()  # the runs' own --hours, checked before a worker starts
    path = Path(out or Path("results") / f"tune-refill{refill:g}.toml")
    first, fresh = tuple(range(seeds)), tuple(range(seeds, 2 * seeds))
    world = [a for a in assignments if a.split(".")[0] in PREFIXES]
    pool = executor(workers, scheduler)
    try:
        problem = dataclasses.replace(problem, executor=pool)
        trials = tuning.search(problem, axes, first, budget, sampler_seed)
        finalists = problem.confirm(trials, fresh, confirm) if confirm else problem.best(trials)
        used = first + fresh if confirm else first
        presets = [dataclasses.replace(problem, base=resolve_base(name, None, world))
                   .trials([{}], used, [0])[0] for name in ("seed-before", "seed-after")]
    finally:
        pool.close()
    winner = finalists[0] if finalists else None
    click.echo(compare(problem, trials, winner, presets, axes, used))
    if winner is None:
        raise click.ClickException("no config met the constraints; loosen them (--constraint) "
                                   "or widen the search (--grid, --budget)")
    header = (f"Found by sim tune at {refill:g} tokens/min, {hours:g} h runs: {objective} "
              f"{winner.means[objective]:.4g} (mean of {len(used)} seeds); constraints: "
              + (", ".join(map(str, checks)) or "none"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tuning.winner_config(problem, winner).to_toml(header))
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
    click.echo(f"winner written to {path} (sim run --config {path}; "
               f"collector live --config {path})")


def compare(problem, trials, winner, presets, axes, seeds) -> str:
    """The winner beside seed-before and seed-after on the same metrics and seeds."""
    import pandas as pd

    metrics = list(dict.fromkeys([problem.objective, *(c.metric for c in problem.constraints),
                                  "deals_per_hour", "http_429", "freshness_p95_s",
                                  "max_gap_s", "token_utilization", "calls_per_minute",
                                  "fraction_of_bound", "bound_by", "tokens_per_deal"]))
    columns = {"seed-before": presets[0], "seed-after": presets[1]}
    if winner is not None:
        columns["winner"] = winner
    table = pd.DataFrame({name: [t.means[m] for m in metrics] + ["yes" if t.feasible else "no"]
                          for name, t in columns.items()},
                         index=[*metrics, "meets the constraints"])
    bounds = {c.metric: str(c) for c in problem.constraints}
    table.index = [f"{m} ({bounds[m]})" if m in bounds else m for m in table.index]
    lines = [f"{len(trials)} configs tried at {problem.refill:g} tokens/min, "
             f"{problem.hours:g} h runs; {sum(t.feasible for t in trials)} met the constraints."]
    if winner is not None:
        lines.append("winner: " + ", ".join(f"{axis.name}={winner.point[axis.name]}"
                                            for axis in axes))
    lines.append(f"means over seeds {seeds[0]}..{seeds[-1]}:")
    return "\n".join(lines + [table.to_string(float_format=lambda x: f"{x:,.2f}")])
