"""A sweep: every point of a grid at every refill rate, several seeds each.

`Spec` is what ``sim sweep`` was asked; `Spec.jobs` builds and validates every
run's config and scenario before anything runs, so a bad grid costs nothing.
`run_sweep` executes the runs not already stored (a resumed sweep redoes
nothing) on any executor of `sim.executors` and stores one row per run: the
run's config columns beside every summary metric, flattened
(``tasks.backfill.calls_per_minute``). `aggregate` turns rows into per-point
means with 95 % intervals over the seeds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from collector.config import Config, ConfigError, StepRule, keys
from sim.engine import simulate
from sim.executors import Serial
from sim.grid import Axis, parse_axis
from sim.keepa import ServerSettings
from sim.settings import PREFIXES, Scenario, build, split_overrides
from sim.store import JOURNAL, Store

SAVE_EVERY_S = 5.0
METRIC = "deals_per_hour"


@dataclass(frozen=True)
class Job:
    """One run: its config and scenario, the row's config columns, its place in the table."""

    run_id: str
    order: tuple[int, int, int]  # (refill, point, seed) indices
    columns: dict
    config: Config
    scenario: Scenario


@dataclass(frozen=True)
class Spec:
    """A sweep: base assignments (every collector key, plus world overrides), axes,
    refill rates, hours and the seeds each point runs with."""

    base: tuple[str, ...]
    axes: tuple[Axis, ...]
    refills: tuple[float, ...]
    hours: float
    seeds: tuple[int, ...]

    @property
    def knobs(self) -> list[str]:
        """Every swept key, in axis order."""
        return [key for axis in self.axes for key in axis.keys]

    def manifest(self) -> dict:
        return {"base": list(self.base),
                "axes": [{"keys": list(a.keys), "values": list(a.values),
                          "geometric": a.geometric} for a in self.axes],
                "refills": list(self.refills), "hours": self.hours, "seeds": list(self.seeds)}

    @classmethod
    def from_manifest(cls, data: dict) -> Spec:
        axes = tuple(Axis(tuple(a["keys"]), tuple(a["values"]), a["geometric"])
                     for a in data["axes"])
        return cls(tuple(data["base"]), axes, tuple(data["refills"]), data["hours"],
                   tuple(data["seeds"]))

    def jobs(self) -> list[Job]:
        """Every run, seed-major (each seed's full picture before the next seed).

        Raises a one-line ConfigError naming the flag at the first bad value."""
        seen = set()
        for key in self.knobs:
            if key in seen:
                raise ConfigError(f"--grid: {key} is swept twice")
            seen.add(key)
        self._build([], ServerSettings().rate, "")  # the base alone, at a rate known good
        for refill in self.refills:
            self._build([], refill, f"--refill {refill:g}: ")
            for axis in self.axes:
                for value in axis.values:
                    self._build(axis.assignments(value), refill, f"--grid {axis.name}={value}: ")
        points = list(itertools.product(*(axis.values for axis in self.axes)))
        built = {}
        for (r, refill), (p, point) in itertools.product(enumerate(self.refills),
                                                          enumerate(points)):
            assignments = [a for axis, v in zip(self.axes, point) for a in axis.assignments(v)]
            where = ", ".join(f"{axis.name}={v}" for axis, v in zip(self.axes, point))
            built[r, p] = where, *self._build(assignments, refill, f"--grid point {where}: ")
        jobs, ids = [], {}
        for seed, ((r, p), (where, config, scenario)) in itertools.product(self.seeds,
                                                                         built.items()):
            scenario = dataclasses.replace(scenario, seed=seed)
            job = Job(run_id(config, scenario), (r, p, seed),
                      self._columns(config, scenario), config, scenario)
            if job.run_id in ids:
                raise ConfigError(f"--grid: {ids[job.run_id]} and {where} are the same config")
            ids[job.run_id] = where
            jobs.append(job)
        return jobs

    def _build(self, assignments: list[str], refill: float, where: str):
        try:
            return build(None, None, [*self.base, *assignments], refill, self.hours, 0)
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}") from None

    def _columns(self, config: Config, scenario: Scenario) -> dict:
        columns = {"refill": scenario.server.rate}
        columns |= {key: value_of(config, scenario, key) for key in self.knobs}
        columns |= {"seed": scenario.seed, "hours": scenario.hours}
        columns |= {key: value_of(config, scenario, key) for key in keys() if key not in columns}
        return columns


def spec_from_options(preset: str | None, config_file: str | None, assignments: Iterable[str],
                      grid: Sequence[str], refills: Sequence[float], hours: float,
                      seeds: int, default_grid: Sequence[str]) -> Spec:
    """The sweep that ``sim sweep``'s options describe (``--grid`` or else `default_grid`)."""
    return Spec(resolve_base(preset, config_file, assignments),
                tuple(parse_axis(text) for text in (grid or default_grid)),
                tuple(refills), hours, tuple(range(seeds)))


def resolve_base(preset: str | None, config_file: str | None,
                 assignments: Iterable[str]) -> tuple[str, ...]:
    """The base config as assignments of every collector key (so the sweep no longer
    depends on the file it came from), then the world overrides as given.

    ``refill_rate`` is left to follow each run's ``--refill``, as in `build`,
    unless ``--set`` names it."""
    collector_changes, world_changes = split_overrides(assignments)
    config = Config.load(preset, config_file).updated(collector_changes)
    base = [f"{key}={_text(getattr(config, key))}" for key in keys()
            if key != "refill_rate" or key in collector_changes]
    return tuple(base + [f"{key}={value}" for key, value in world_changes.items()])


def _text(value) -> str:
    return "none" if value is None else str(value)


def value_of(config: Config, scenario: Scenario, key: str):
    """A collector or world key's value in a run, as a table cell."""
    prefix, _, name = key.partition(".")
    value = getattr(getattr(scenario, prefix), name) if prefix in PREFIXES and name \
        else getattr(config, key)
    return str(value) if isinstance(value, StepRule) else value


def run_id(config: Config, scenario: Scenario) -> str:
    """A run's identity: a digest of everything that determines it."""
    text = json.dumps([config.to_dict(), dataclasses.asdict(scenario)], sort_keys=True,
                      default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def measure(job: Job) -> dict:
    """Run one job (in a worker) and return its summary."""
    return simulate(job.config, job.scenario).summary


def flatten(summary: dict, prefix: str = "") -> dict:
    """Nested summary → flat columns: ``tasks.backfill.calls_per_minute``."""
    flat = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def run_sweep(spec: Spec, store: Store, executor=None, progress: bool = True) -> int:
    """Run what `store` does not hold yet; returns how many runs this call made.

    `spec` is a `Spec` or anything else with its `jobs` and `manifest`, such as
    ``sim compare``'s `sim.compare.Comparison`."""
    from tqdm import tqdm

    jobs = spec.jobs()
    stored = store.open(spec.manifest())
    todo = [job for job in jobs if job.run_id not in stored]
    order = {job.run_id: job.order for job in jobs}
    stale = len(stored.keys() - order.keys())
    if stale:
        print(f"{stale} stored rows are of runs this sweep no longer has (the simulator's "
              f"settings changed?); they stay in {JOURNAL}, out of the tables", file=sys.stderr)
    if len(todo) < len(jobs):
        print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already in {store.root}; "
              f"{len(todo)} to go", file=sys.stderr)
    done = 0
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="run", file=sys.stderr,
               disable=not progress, smoothing=0.05, dynamic_ncols=True)
    saved = time.monotonic()
    try:
        for index, summary in (executor or Serial()).map(measure, todo):
            job = todo[index]
            store.add(job.run_id, job.columns | flatten(summary))
            done += 1
            bar.update()
            if time.monotonic() - saved > SAVE_EVERY_S:
                store.save(order)
                saved = time.monotonic()
    finally:
        bar.close()
        if stored or done:
            store.save(order)
        store.close()
    return done


def aggregate(table, by: Sequence[str], metrics: Sequence[str]):
    """Per group of `by`: n, and each metric's mean and 95 % half-interval
    (``METRIC_ci``, Student's t over the seeds; NaN for one seed)."""
    from scipy import stats

    grouped = table.groupby(list(by), sort=False, dropna=False)
    out = grouped[list(metrics)].mean()
    n = grouped.size()
    half = stats.t.ppf(0.975, n - 1)
    sem = grouped[list(metrics)].sem()
    for metric in metrics:
        out[f"{metric}_ci"] = sem[metric] * half
    out["n"] = n
    return out.reset_index()
