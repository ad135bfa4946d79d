"""``sim compare``: every preset at every refill rate, on the same seeds and worlds.

A `Comparison` is one `sim.sweep.Spec` per preset, each with no axes (one
point: the preset) and the shared ``--set``s on top, whose jobs are pooled
into one list. It offers `jobs` and `manifest`, all that `run_sweep` asks of a
spec, so one executor (process pool or Dask) runs every preset's runs, one
progress bar counts them and one results directory (`sim.store.Store`) holds
them and resumes them. An axis over presets would not fit a Spec: an axis
assigns values to config keys, and a preset is not a key but a whole config.

Runs of different presets at one rate and seed share their scenario (the same
server, market and seed), so they differ in the collector alone. Each row of
the table carries a ``preset`` column beside the run's every config key.
`summarize` turns the rows into one line per rate and preset (means, 95 %
intervals over the seeds, the bound that binds), `markdown` into the table
``sim compare`` prints, and `report` stores that table as CSV and Markdown
beside the plot of fraction of bound against refill rate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.config import ConfigError
from collector.presets import PRESETS
from sim.store import Store
from sim.sweep import Job, Spec, aggregate, resolve_base

KIND = "compare"
METRICS = ("deals_per_hour", "fraction_of_bound", "token_utilization", "tokens_per_deal",
           "freshness_p95_s", "stale_p95_s", "http_429", "max_gap_s")
"""The summary metrics the table shows, as means over the seeds (``bound_by`` beside them)."""
TABLE, CSV_FILE = "compare.md", "compare.csv"


@dataclass(frozen=True)
class Comparison:
    """Presets (in order), the ``--set`` assignments every preset's runs share,
    refill rates, hours and seeds."""

    presets: tuple[str, ...]
    assignments: tuple[str, ...]
    refills: tuple[float, ...]
    hours: float
    seeds: tuple[int, ...]

    @classmethod
    def from_options(cls, presets: str | None, assignments: Iterable[str],
                     refills: Sequence[float], hours: float, seeds: int) -> Comparison:
        """What ``sim compare``'s options describe; `presets` is the ``--presets`` text,
        None for every preset in `collector.presets.PRESETS`, in its order."""
        return cls(parse_presets(presets), tuple(assignments), tuple(refills), hours,
                   tuple(range(seeds)))

    def specs(self) -> dict[str, Spec]:
        """Each preset's sweep: the preset's every key with the shared ``--set``s on top."""
        return {name: Spec(resolve_base(name, None, self.assignments), (), self.refills,
                           self.hours, self.seeds) for name in self.presets}

    def jobs(self) -> list[Job]:
        """Every run, seed-major; a row's order (refill, preset, seed) puts the tables
        rate by rate, presets in the order given.

        Raises a one-line ConfigError at the first bad value, before anything runs."""
        if not self.refills:
            raise ConfigError("--refill: empty list of rates")
        jobs, ids = [], {}
        for p, (name, spec) in enumerate(self.specs().items()):
            for job in spec.jobs():
                r, _, seed = job.order
                if job.run_id in ids:
                    raise ConfigError(f"--presets: {ids[job.run_id]} and {name} are the same "
                                      f"config at {job.scenario.server.rate:g} tokens/min")
                ids[job.run_id] = name
                jobs.append(dataclasses.replace(job, order=(r, p, seed),
                                                columns={"preset": name} | job.columns))
        return sorted(jobs, key=lambda job: (job.order[2], job.order[0], job.order[1]))

    def manifest(self) -> dict:
        """What `Store` records and checks on resume. Presets are kept by name, so a
        preset whose definition changed gets new run identities: its runs run again,
        and its old rows stay in the journal only."""
        return {"kind": KIND, "presets": list(self.presets), "set": list(self.assignments),
                "refills": list(self.refills), "hours": self.hours, "seeds": list(self.seeds)}

    @classmethod
    def from_manifest(cls, data: dict) -> Comparison:
        return cls(tuple(data["presets"]), tuple(data["set"]), tuple(data["refills"]),
                   data["hours"], tuple(data["seeds"]))


def parse_presets(text: str | None) -> tuple[str, ...]:
    """``--presets a,b`` → names, each a known preset, none twice; None → every preset."""
    if text is None:
        return tuple(PRESETS)
    names = tuple(name.strip() for name in text.split(","))
    for name in names:
        if not name:
            raise ConfigError(f"--presets {text}: an empty preset name "
                              f"(choose from {', '.join(PRESETS)})")
        if name not in PRESETS:
            raise ConfigError(f"--presets {text}: unknown preset {name!r} "
                              f"(choose from {', '.join(PRESETS)})")
        if names.count(name) > 1:
            raise ConfigError(f"--presets {text}: {name} is named twice")
    return names


def load(root: str | Path) -> tuple[Comparison, object]:
    """A ``sim compare --out`` folder's comparison and its table of runs."""
    store = Store(root)
    manifest = store.manifest()
    if manifest.get("kind") != KIND:
        raise ConfigError(f"{store.root} holds a sweep, not a comparison (sim compare --out)")
    return Comparison.from_manifest(manifest), store.table()


def summarize(table):
    """One row per refill rate and preset, in the table's order: each of `METRICS`'
    mean and 95 % half-interval over the seeds (``METRIC_ci``), n, and ``bound_by``:
    the binding resource, or several by how many seeds each bound (``tokens/market``)."""
    table = table.astype({metric: float for metric in METRICS})  # a None cell becomes NaN
    points = aggregate(table, ["refill", "preset"], METRICS)
    bound = (table.groupby(["refill", "preset"], sort=False)["bound_by"]
             .agg(lambda column: "/".join(column.value_counts().index)).rename("bound_by"))
    return points.merge(bound.reset_index(), on=["refill", "preset"], how="left")


def markdown(points, comparison: Comparison) -> str:
    """The comparison table: one row per rate and preset, the figures `METRICS` name."""
    seeds = comparison.seeds
    lines = [f"mean of {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}), "
             f"{comparison.hours:g} simulated hours a run; ± is the 95 % interval"
             + (f"; --set {' '.join(comparison.assignments)}" if comparison.assignments else ""),
             "",
             "| refill/min | preset | deals/h | fraction_of_bound | bound_by | "
             "token_utilization | tokens_per_deal | freshness_p95_s | stale_p95_s | 429s | "
             "max_gap_s |",
             "|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for row in points.itertuples(index=False):
        rate, half = row.deals_per_hour, row.deals_per_hour_ci
        deals = f"{rate:,.2f}" + (f" ± {half:,.2f}" if half == half else "")
        cells = [f"{row.refill:g}", row.preset, deals, _num(row.fraction_of_bound, 3),
                 row.bound_by, _num(row.token_utilization, 3), _num(row.tokens_per_deal, 1),
                 _num(row.freshness_p95_s, 0), _num(row.stale_p95_s, 0),
                 _num(row.http_429, 1), _num(row.max_gap_s, 0)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _num(value: float, digits: int) -> str:
    """A mean as a table cell: thousands separated, '-' where no seed had a value."""
    return "-" if value != value else f"{value:,.{digits}f}"


def report(comparison: Comparison, table, root: str | Path, fmt: str = "png"):
    """What ``sim compare`` (and ``sim plot`` on its folder) leaves in `root`: the table
    of `table`'s runs as ``compare.csv`` and ``compare.md``, and its plot. Returns the
    Markdown table and the paths written."""
    from sim.plots import draw_comparison

    root = Path(root)
    points = summarize(table)
    text = markdown(points, comparison)
    points.to_csv(root / CSV_FILE, index=False)
    (root / TABLE).write_text(text + "\n")
    plot = draw_comparison(points, len(comparison.seeds), comparison.hours, root, fmt)
    return text, [root / CSV_FILE, root / TABLE, plot]
