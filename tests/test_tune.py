"""`sim tune`: constraints, the search space, the grid comparison, the TOML it writes."""

from __future__ import annotations

import itertools
import re

import pytest

from collector.config import Config
from sim.executors import Pool, Serial
from sim.grid import parse_axis
from sim.sweep import resolve_base
from sim.tune import (CONFIRM, DEFAULT_CONSTRAINTS, UNDEFINED, Constraint, Problem, corners,
                      search, suggest)


@pytest.mark.parametrize("text, value, violation", [
    ("freshness_p95_s<=7200", 7000.0, -200.0),
    ("freshness_p95_s <= 7200", 7300.0, 100.0),
    ("deals_per_hour>=8", 7.5, 0.5),
    ("http_429==0", 0.0, 0.0),
    ("http_429==0", 2.0, 2.0),
    ("freshness_p95_s<=7200", None, UNDEFINED),  # no new deal stored: not met
])
def test_constraint_violation(text, value, violation):
    assert Constraint.parse(text).violation(value) == violation


class At:
    """A stand-in for an Optuna trial that proposes a fixed position or choice."""

    def __init__(self, position):
        self.position = position

    def suggest_float(self, name, low, high):
        assert low <= self.position <= high
        return self.position

    def suggest_categorical(self, name, choices):
        return choices[self.position]


@pytest.mark.parametrize("grid, position, value", [
    ("min_interval_s=0,1,10,30,60,120", 0, "0"),
    ("min_interval_s=0,1,10,30,60,120", 1, "1"),
    ("min_interval_s=0,1,10,30,60,120", 0.5, "0"),  # 0.5 s rounds to the even whole second
    ("min_interval_s=0,1,10,30,60,120", 1.5, "6"),  # halfway from 1 to 10
    ("min_interval_s=0,1,10,30,60,120", 5, "120"),
    ("batch_size=1:16:x2", 2, "4"),
    ("batch_size=1:16:x2", 3.5, "12"),
    ("filter_min_roi=0.1,0.2", 0.5, "0.15"),
    ("policy=seed,reactive", 1, "reactive"),
])
def test_the_search_moves_along_the_grid_spacing_through_every_grid_point(grid, position, value):
    assert suggest(At(position), parse_axis(grid)) == value


AXES = tuple(parse_axis(t) for t in ("batch_size+chunk_size=1:8:x2", "min_interval_s=0,1,60",
                                     "burst_threshold=40,280"))


def problem(executor=None, hours=6.0) -> Problem:
    return Problem(resolve_base("fixed", None, []), 5.0, hours,
                   constraints=tuple(map(Constraint.parse, DEFAULT_CONSTRAINTS)),
                   executor=executor)


def test_the_search_starts_at_the_corners_of_the_space():
    axes = AXES + (parse_axis("policy=seed,reactive"), parse_axis("chunk_size=4"))
    first = corners(axes, 100, seed=0)
    assert len(first) == 16  # 2 ends of 4 axes; a one-value axis has no ends
    assert {"batch_size+chunk_size": 0.0, "min_interval_s": 2.0, "burst_threshold": 1.0,
            "policy": "reactive"} in first
    assert [suggest(At(c["min_interval_s"]), AXES[1]) for c in first[:2]] == ["0", "0"]
    few = corners(axes, 5, seed=0)
    assert len(few) == 5 and all(c in first for c in few)
    assert few == corners(axes, 5, seed=0) != corners(axes, 5, seed=1)


def test_tune_with_a_grids_budget_does_at_least_as_well_as_the_grid():
    """Done-when 4. The grid (24 points) and the search (24 configs, the same space) run on
    seeds 0-2, and each side's best few are confirmed on seeds 3-5 the same way, so
    the two winners are compared on the same six seeds and by the same rule.

    At 5 tokens/min the top of this landscape is flat within noise (batch 1, any
    spacing and burst: 11-12 deals/h). The grid's best (batch 1, 60 s, burst 40) is
    a corner of the space, which the search tries first (`corners`), so both name it:
    measured 12.5 against 12.5 for sampler seeds 0-2. Without the corners the
    search fell 1-2 % short (12.22-12.36)."""
    executor = Pool(2)
    try:
        p = problem(executor)
        points = [dict(zip([a.name for a in AXES], values))
                  for values in itertools.product(*(a.values for a in AXES))]
        grid = p.trials(points, (0, 1, 2), list(range(len(points))))
        tuned = search(p, AXES, (0, 1, 2), len(points), seed=0, progress=False)
        assert len(tuned) == len(points)
        grid_best = p.confirm(grid, (3, 4, 5), CONFIRM)[0]
        tuned_best = p.confirm(tuned, (3, 4, 5), CONFIRM)[0]
    finally:
        executor.close()
    assert tuned_best.feasible and tuned_best.runs == 6
    assert tuned_best.means["deals_per_hour"] >= grid_best.means["deals_per_hour"]


def test_the_search_is_seeded_and_does_not_depend_on_the_executor():
    def run(executor):
        trials = search(problem(executor, hours=1.0), AXES, (0, 1), 6, seed=3, progress=False)
        return [(t.point, {k: v for k, v in t.means.items() if k != "wall_s"}) for t in trials]

    executor = Pool(2)
    try:
        assert run(executor) == run(Serial())
    finally:
        executor.close()


def test_tune_writes_a_toml_that_sim_run_reads_unchanged(sim, sim_json, tmp_path):
    path = tmp_path / "best.toml"
    result = sim("tune", "--refill", "5", "--hours", "2", "--budget", "6", "--seeds", "2",
                 "--confirm", "2", "--workers", "1", "--out", str(path))
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()
    assert re.search(r"seed-before\s+seed-after\s+winner", result.stdout)
    assert any(line.startswith("meets the constraints") for line in header)
    point = next(line for line in header if line.startswith("winner: "))[len("winner: "):]
    sets = [f"{key}={value}" for item in point.split(", ")
            for name, value in [item.split("=")] for key in name.split("+")]
    assert Config.load(file=path) == Config.load("fixed", overrides=sets)
    from_file = sim_json("--config", str(path), "--hours", "2")
    from_sets = sim_json("--preset", "fixed", *(a for s in sets for a in ("--set", s)),
                         "--hours", "2")
    from_file.pop("wall_s"), from_sets.pop("wall_s")
    assert from_file == from_sets


def test_no_config_meets_the_constraints_writes_nothing(sim, tmp_path):
    path = tmp_path / "best.toml"
    result = sim("tune", "--hours", "1", "--budget", "2", "--seeds", "1", "--confirm", "1",
                 "--workers", "1", "--constraint", "deals_per_hour>=1000", "--out", str(path))
    assert result.exit_code == 1
    assert "no config met the constraints" in result.stderr
    assert not path.exists()


@pytest.mark.parametrize("args, needle", [
    (["--objective", "nope"], "--objective: unknown metric 'nope'"),
    (["--constraint", "freshness<=60"], "--constraint: unknown metric 'freshness'"),
    (["--constraint", "freshness_p95_s=60"], "expected METRIC<=NUMBER"),
    (["--base", "nope"], "--base nope: neither a preset"),
    (["--grid", "chunk_size=0,4"], "--grid chunk_size=0: chunk_size: must be > 0"),
])
def test_bad_tune_input_is_one_line_and_exit_2(sim, tmp_path, args, needle):
    path = tmp_path / "best.toml"
    result = sim("tune", "--budget", "2", "--workers", "1", "--out", str(path), *args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stderr.count("\n") == 1
    assert not path.exists()
