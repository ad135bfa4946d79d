"""Search the knob space for the best config under constraints (Optuna).

The space is given as grid axes (`sim.grid`), so any sweep's grid is also a
search space that contains every one of its points: an axis of numbers spans
its least to its greatest value along the grid's own spacing (see `suggest`),
an axis of other values is a categorical choice. The search first tries the
corners of the space (`corners`), then Optuna's TPE sampler, seeded,
proposes trials in fixed batches (so the search does not depend on how many
workers run it). Every trial runs on the same seeds 0..N-1, as a sweep's
points do, and is judged on its means over them; the few best are then run
again on N fresh seeds and the winner named on the means over all 2N, so one
lucky seed does not pick it (`Problem.confirm`). Constraints
(``freshness_p95_s<=7200``) reach the sampler as Optuna constraint values
(<= 0: met), which steer it towards configs that meet them.
"""

from __future__ import annotations

import itertools
from collections import Counter
import math
import random
import re
import sys
from dataclasses import dataclass, field

from collector.config import Config, ConfigError
from sim.engine import simulate
from sim.executors import Serial
from sim.grid import Axis
from sim.settings import build
from sim.sweep import Spec, flatten, measure

DEFAULT_CONSTRAINTS = ("http_429<=0", "freshness_p95_s<=7200", "max_gap_s<=3600")
"""No 429; a new deal stored within 2 h (p95); never an hour without storing a deal."""
BATCH = 4  # trials proposed together; fixed, so results do not depend on --workers
CONFIRM = 5  # best trials run again on fresh seeds before a winner is named
UNDEFINED = 1e12  # the violation of a constraint on a metric a run left undefined
_CONSTRAINT = re.compile(r"^\s*([\w.]+)\s*(<=|>=|==|<|>)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``metric OP bound`` over a trial's mean; ``<`` and ``<=`` are treated alike."""

    metric: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        match = _CONSTRAINT.match(text)
        try:
            if not match:
                raise ValueError
            return cls(match[1], match[2], float(match[3]))
        except ValueError:
            raise ConfigError(f"--constraint {text!r}: expected METRIC<=NUMBER "
                              "(or >=, ==), e.g. freshness_p95_s<=7200") from None

    def violation(self, value: float | None) -> float:
        """How far `value` misses the bound; <= 0 when the constraint holds."""
        if value is None or math.isnan(value):
            return UNDEFINED
        if self.op in ("<=", "<"):
            return value - self.bound
        if self.op in (">=", ">"):
            return self.bound - value
        return abs(value - self.bound)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


@dataclass
class Trial:
    """One evaluated config: its knob values, the means of every metric over `runs` seeds,
    and how far each constraint is missed (<= 0: met)."""

    number: int
    point: dict[str, str]
    means: dict[str, float | None]
    runs: int
    violations: list[float] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations)


@dataclass(frozen=True)
class Problem:
    """What to optimise, where, and on what executor."""

    base: tuple[str, ...]
    refill: float
    hours: float
    objective: str = "deals_per_hour"
    maximize: bool = True
    constraints: tuple[Constraint, ...] = ()
    executor: object = None

    def check(self) -> None:
        """Reject an unknown objective or constraint metric before anything runs: the
        metric names are those of a few simulated minutes of the base config."""
        config, scenario = build(None, None, self.base, self.refill, 0.1, 0)
        names = set(flatten(simulate(config, scenario).summary))
        for name, flag in [(self.objective, "--objective"),
                           *((c.metric, "--constraint") for c in self.constraints)]:
            if name not in names:
                raise ConfigError(f"{flag}: unknown metric {name!r} (e.g. deals_per_hour, "
                                  "http_429, freshness_p95_s, max_gap_s, "
                                  "tasks.backfill.api_calls)")

    def spec(self, point: dict[str, str], seeds: tuple[int, ...]) -> Spec:
        """The runs of one config: `point` maps an axis name (``a+b``) to its value."""
        axes = tuple(Axis(tuple(name.split("+")), (value,)) for name, value in point.items())
        return Spec(self.base, axes, (self.refill,), self.hours, seeds)

    def trials(self, points: list[dict[str, str]], seeds: tuple[int, ...],
               numbers: list[int]) -> list[Trial]:
        """Run every point on `seeds` (all at once on the executor) and judge the means."""
        groups = [self.spec(point, seeds).jobs() for point in points]
        jobs = [job for group in groups for job in group]
        summaries: list = [None] * len(jobs)
        for index, summary in (self.executor or Serial()).map(measure, jobs):
            summaries[index] = flatten(summary)
        out = []
        for n, (number, point) in enumerate(zip(numbers, points)):
            rows = summaries[n * len(seeds):(n + 1) * len(seeds)]
            out.append(self.judge(number, point, _means(rows), len(seeds)))
        return out

    def judge(self, number: int, point: dict[str, str], means: dict, runs: int) -> Trial:
        return Trial(number, point, means, runs,
                     [c.violation(means[c.metric]) for c in self.constraints])

    def score(self, trial: Trial) -> float:
        """The objective as Optuna sees it (an undefined objective is the worst)."""
        value = trial.means[self.objective]
        return value if value is not None else (-UNDEFINED if self.maximize else UNDEFINED)

    def best(self, trials: list[Trial], count: int = 1) -> list[Trial]:
        """The `count` best feasible trials, best first (the earlier on a tie)."""
        sign = 1 if self.maximize else -1
        feasible = [t for t in trials if t.feasible and t.means[self.objective] is not None]
        return sorted(feasible, key=lambda t: (-sign * t.means[self.objective], t.number))[:count]

    def confirm(self, trials: list[Trial], seeds: tuple[int, ...], count: int) -> list[Trial]:
        """Run the `count` best feasible trials again on fresh `seeds`; their means are then
        over both seed sets, which tames the luck that put them on top (best first)."""
        top = self.best(trials, count)
        again = self.trials([t.point for t in top], seeds, [t.number for t in top])
        pooled = [self.judge(t.number, t.point, _pool(t.means, t.runs, a.means, a.runs),
                             t.runs + a.runs) for t, a in zip(top, again)]
        return self.best(pooled, count)


def _means(rows: list[dict]) -> dict[str, float | str | None]:
    """Each metric's mean over the runs (None if any run left it undefined); a named
    outcome such as ``bound_by``, the one most runs had."""
    means = {}
    for key in rows[0]:
        values = [row.get(key) for row in rows]
        if any(v is None for v in values):
            means[key] = None
        elif isinstance(values[0], str):
            means[key] = Counter(values).most_common(1)[0][0]
        else:
            means[key] = sum(values) / len(values)
    return means


def _pool(a: dict, na: int, b: dict, nb: int) -> dict:
    """Means over both seed sets; a named outcome keeps the first set's."""
    def pooled(k):
        if a[k] is None or b.get(k) is None:
            return None
        if isinstance(a[k], str):
            return a[k]
        return (a[k] * na + b[k] * nb) / (na + nb)

    return {k: pooled(k) for k in a}


def suggest(trial, axis: Axis) -> str:
    """Optuna's proposal for one axis, as the text `build()` takes.

    A numeric axis is searched along its own spacing: the sampler picks a
    position in [0, n-1] over the n sorted values and the value is
    interpolated between its neighbours, so ``0,1,10,30,60,120`` is explored
    as densely near 0 as near 120 in the grid's terms, a ``1:64:x2`` range on
    a log scale, and every grid point is a position of the search. Values are
    whole numbers when all the axis's values are."""
    numbers = axis.numbers()
    if len(axis.values) == 1:
        return axis.values[0]
    if numbers is None:
        return trial.suggest_categorical(axis.name, list(axis.values))
    numbers = sorted(set(numbers))
    position = trial.suggest_float(axis.name, 0, len(numbers) - 1)
    i = min(int(position), len(numbers) - 2)
    value = numbers[i] + (position - i) * (numbers[i + 1] - numbers[i])
    return str(round(value)) if all(n.is_integer() for n in numbers) else f"{value:.4g}"


def search(problem: Problem, axes: tuple[Axis, ...], seeds: tuple[int, ...], budget: int,
           seed: int = 0, progress: bool = True) -> list[Trial]:
    """Try `budget` distinct configs; returns them in the order tried.

    A config proposed again is answered from the first try and costs nothing;
    the search ends early if the sampler keeps proposing tried configs."""
    import optuna
    from tqdm import tqdm

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if problem.maximize else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    for axis in axes:  # every value of the space must be valid before anything runs
        for value in axis.values:
            problem.spec({axis.name: value}, seeds[:1]).jobs()
    for corner in corners(axes, budget // 3, seed):
        study.enqueue_trial(corner)
    tried: dict[tuple, Trial] = {}
    asked = 0
    with tqdm(total=budget * len(seeds), unit="run", file=sys.stderr, disable=not progress,
              dynamic_ncols=True) as bar:
        while len(tried) < budget and asked < 20 * budget:
            batch = [study.ask() for _ in range(min(BATCH, budget - len(tried)))]
            asked += len(batch)
            points = [{axis.name: suggest(t, axis) for axis in axes} for t in batch]
            new = list({_key(p): p for p in points if _key(p) not in tried}.values())
            for trial in problem.trials(new, seeds, [len(tried) + i for i in range(len(new))]):
                tried[_key(trial.point)] = trial
            for t, point in zip(batch, points):
                trial = tried[_key(point)]
                for constraint, violation in zip(problem.constraints, trial.violations):
                    t.set_constraint(str(constraint), violation)
                study.tell(t, problem.score(trial))
            bar.update(len(new) * len(seeds))
    return list(tried.values())


def corners(axes: tuple[Axis, ...], most: int, seed: int) -> list[dict]:
    """The first trials: every combination of each axis's ends (a two-level factorial
    design), or `most` of them drawn with `seed`, as Optuna parameters for `suggest`.

    The knobs of a token-bucket collector often act monotonically (bigger batches,
    shorter spacing), so the best config of a range often sits at its edge, where
    TPE's random start rarely looks."""
    ends = []
    for axis in axes:
        if len(axis.values) == 1:
            continue
        numbers = axis.numbers()
        if numbers is None:
            ends.append([(axis.name, axis.values[0]), (axis.name, axis.values[-1])])
        else:
            ends.append([(axis.name, 0.0), (axis.name, float(len(set(numbers)) - 1))])
    points = [dict(combo) for combo in itertools.product(*ends)]
    if len(points) > most:
        points = random.Random(seed).sample(points, most)
    return points


def _key(point: dict[str, str]) -> tuple:
    return tuple(sorted(point.items()))


def winner_config(problem: Problem, trial: Trial) -> Config:
    return problem.spec(trial.point, (0,)).jobs()[0].config
