"""`sim sweep`: grids, validation before any run, the results store, resume, executors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from collector.config import ConfigError
from sim.engine import simulate
from sim.grid import DEFAULT_GRID, parse_axis
from sim.settings import build
from sim.store import JOURNAL
from sim.sweep import aggregate, spec_from_options

SMALL = ["--hours", "2", "--seeds", "2", "--refill", "5,20", "--no-plots",
         "--grid", "batch_size+chunk_size=1,4", "--grid", "min_interval_s=1,60"]
SMALL_RUNS = 2 * 2 * 2 * 2


def table(path) -> pd.DataFrame:
    """A results table without its one wall-clock column."""
    return pd.read_parquet(path / "results.parquet").drop(columns="wall_s")


@pytest.mark.parametrize("text, keys, values", [
    ("chunk_size=1:64:x2", ("chunk_size",), ["1", "2", "4", "8", "16", "32", "64"]),
    ("min_interval_s=0:60:+15", ("min_interval_s",), ["0", "15", "30", "45", "60"]),
    ("min_interval_s=0,1:8:x2", ("min_interval_s",), ["0", "1", "2", "4", "8"]),
    ("filter_min_roi=0:0.3:+0.1", ("filter_min_roi",), ["0", "0.1", "0.2", "0.3"]),
    ("batch_size+chunk_size=1,4", ("batch_size", "chunk_size"), ["1", "4"]),
    ("burst_threshold=80<10,280;40", ("burst_threshold",), ["80<10,280", "40"]),
    ("burst_threshold=40,80", ("burst_threshold",), ["40", "80"]),
])
def test_grid_values_lists_and_ranges(text, keys, values):
    axis = parse_axis(text)
    assert axis.keys == keys
    assert list(axis.values) == values


def test_default_grid_ties_batch_and_chunk_and_brackets_the_seed():
    spec = spec_from_options(None, None, [], [], [5.0], 24, 1, DEFAULT_GRID)
    assert spec.knobs == ["batch_size", "chunk_size", "min_interval_s", "burst_threshold"]
    jobs = spec.jobs()
    assert all(j.config.batch_size == j.config.chunk_size for j in jobs)
    seen = {(j.config.batch_size, j.config.min_interval_s, j.config.burst_target(5)) for j in jobs}
    assert (1, 60.0, 80.0) in seen and (4, 1.0, 80.0) in seen  # seed-before's and after's knobs
    assert len(seen) == len(jobs) == 120  # 5 x 6 x 4 distinct points


@pytest.mark.parametrize("args, needle", [
    (["--grid", "nope=1,2"], "--grid nope=1: unknown config key 'nope'"),
    (["--grid", "chunk_size="], "--grid chunk_size=: empty list of values"),
    (["--grid", "chunk_size=4,0"], "--grid chunk_size=0: chunk_size: must be > 0, got 0"),
    (["--grid", "chunk_size=1,2.5"], "chunk_size: expected int, got '2.5'"),
    (["--grid", "chunk_size=1:64:y2"], "bad range '1:64:y2'"),
    (["--grid", "burst_threshold=80<10"], "bad rule '80<10'"),
    (["--grid", "policy=seed,bogus"], "policy: must be one of seed, reactive"),
    (["--grid", "market.backlog=10,-1"], "market.backlog: must be >= 0"),
    (["--grid", "chunk_size=1,2", "--grid", "chunk_size=4"], "chunk_size is swept twice"),
    (["--refill", "5,-1"], "--refill -1: refill_rate: must be > 0"),
])
def test_bad_grid_rejected_before_any_run(sim, tmp_path, monkeypatch, args, needle):
    monkeypatch.setattr("sim.sweep.measure", lambda job: pytest.fail("a run started"))
    out = tmp_path / "out"
    result = sim("sweep", "--workers", "1", "--out", str(out), *args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stderr.count("\n") == 1
    assert not out.exists()


def test_a_sweep_stores_one_row_per_run_with_config_and_every_metric(sim, tmp_path):
    out = tmp_path / "s"
    result = sim("sweep", *SMALL, "--workers", "1", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert "best configs by deals stored per hour" in result.stdout
    rows = pd.read_parquet(out / "results.parquet")
    assert len(rows) == SMALL_RUNS == len(pd.read_csv(out / "results.csv"))
    assert {"refill", "seed", "batch_size", "chunk_size", "min_interval_s", "burst_threshold",
            "peek_offers", "deals_per_hour", "freshness_p95_s", "http_429",
            "tasks.backfill.calls_per_minute", "tasks.recent.tokens_consumed"} <= set(rows.columns)
    assert (rows["batch_size"] == rows["chunk_size"]).all()
    row = rows[(rows.refill == 20) & (rows.batch_size == 1) & (rows.min_interval_s == 60)
               & (rows.seed == 1)].iloc[0]
    config, scenario = build("seed-after", None, ["batch_size=1", "chunk_size=1",
                                                  "min_interval_s=60"], 20, 2, 1)
    alone = simulate(config, scenario).summary
    assert row["deals_per_hour"] == alone["deals_per_hour"]
    assert row["tasks.backfill.api_calls"] == alone["tasks"]["backfill"]["api_calls"]


def test_a_resumed_sweep_redoes_nothing(sim, tmp_path, monkeypatch):
    out = tmp_path / "s"
    assert sim("sweep", *SMALL, "--workers", "1", "--out", str(out)).exit_code == 0
    journal = (out / JOURNAL).read_bytes()
    monkeypatch.setattr("sim.sweep.measure", lambda job: pytest.fail("a stored run ran again"))
    again = sim("sweep", *SMALL, "--workers", "1", "--out", str(out))
    assert again.exit_code == 0, again.stderr
    assert f"{SMALL_RUNS} of {SMALL_RUNS} runs already in" in again.stderr
    assert (out / JOURNAL).read_bytes() == journal


def test_rows_of_runs_the_sweep_no_longer_has_stay_in_the_journal_only(sim, tmp_path):
    """As when the simulator's settings gain a field: every run's identity changes."""
    out = tmp_path / "s"
    assert sim("sweep", *SMALL, "--workers", "1", "--out", str(out)).exit_code == 0
    lines = (out / JOURNAL).read_text().splitlines()
    old = json.loads(lines[0])["run_id"]
    (out / JOURNAL).write_text("\n".join([lines[0].replace(old, "0" * 16), *lines[1:]]) + "\n")
    again = sim("sweep", *SMALL, "--workers", "1", "--out", str(out))
    assert again.exit_code == 0, again.stderr
    assert "1 stored rows are of runs this sweep no longer has" in again.stderr
    assert f"{SMALL_RUNS - 1} of {SMALL_RUNS} runs already in" in again.stderr
    ids = [json.loads(line)["run_id"] for line in (out / JOURNAL).read_text().splitlines()]
    assert ids[0] == "0" * 16 and ids[-1] == old and len(ids) == SMALL_RUNS + 1
    assert set(pd.read_parquet(out / "results.parquet")["run_id"]) == set(ids[1:])


def test_a_killed_sweep_resumes_to_the_same_table(sim, tmp_path):
    """kill -9 mid-sweep (a line of the journal may be cut short), then start again.
    The killed sweep's pool workers end by themselves."""
    import psutil

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    args = ["--hours", "6", "--seeds", "3", "--grid", "batch_size+chunk_size=1:8:x2",
            "--grid", "min_interval_s=0,60", "--no-plots", "--workers", "2"]
    assert sim("sweep", *args, "--out", str(whole)).exit_code == 0
    proc = subprocess.Popen([sys.executable, "-m", "sim", "sweep", *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = killed / JOURNAL
    deadline = time.monotonic() + 60
    while not (journal.exists() and journal.read_bytes().count(b"\n") >= 5):
        assert proc.poll() is None and time.monotonic() < deadline, "sweep ended before the kill"
        time.sleep(0.01)
    workers = psutil.Process(proc.pid).children()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(workers) == 2
    assert not psutil.wait_procs(workers, timeout=10)[1], "pool workers outlived the sweep"
    with open(journal, "ab") as out:
        out.write(b'{"run_id": "cut sho')  # as if the kill landed mid-write
    stored = journal.read_bytes().count(b"\n")
    assert stored < 24
    result = sim("sweep", *args, "--out", str(killed))
    assert result.exit_code == 0, result.stderr
    assert f"{stored} of 24 runs already in" in result.stderr
    pd.testing.assert_frame_equal(table(killed), table(whole))


def test_another_sweep_on_the_same_out_is_refused_and_loses_nothing(sim, tmp_path):
    out = tmp_path / "s"
    assert sim("sweep", *SMALL, "--workers", "1", "--out", str(out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = sim("sweep", *SMALL, "--hours", "3", "--workers", "1", "--out", str(out))
    assert result.exit_code == 2
    assert "holds another sweep (hours differ)" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_process_pool_and_dask_give_identical_tables(sim, tmp_path):
    from distributed import LocalCluster

    pool, dask = tmp_path / "pool", tmp_path / "dask"
    assert sim("sweep", *SMALL, "--workers", "2", "--out", str(pool)).exit_code == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        result = sim("sweep", *SMALL, "--scheduler", cluster.scheduler_address,
                     "--out", str(dask))
    assert result.exit_code == 0, result.stderr
    pd.testing.assert_frame_equal(table(pool), table(dask))
    assert json.loads((pool / "sweep.json").read_text()) == \
        json.loads((dask / "sweep.json").read_text())


def test_unreachable_scheduler_is_one_line_exit_2(sim, tmp_path):
    result = sim("sweep", *SMALL, "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.stderr
    assert result.stderr.count("\n") == 1


def test_intervals_are_student_t_over_the_seeds():
    rows = pd.DataFrame({"k": [1, 1, 1, 2], "m": [1.0, 2.0, 3.0, 5.0]})
    points = aggregate(rows, ["k"], ["m"]).set_index("k")
    assert points.loc[1, "m"] == 2.0 and points.loc[1, "n"] == 3
    assert points.loc[1, "m_ci"] == pytest.approx(4.302653 / 3**0.5)  # t(0.975, 2) x s / sqrt(n)
    assert pd.isna(points.loc[2, "m_ci"])  # one seed: no interval


def test_grid_parse_errors_name_the_flag():
    with pytest.raises(ConfigError, match=r"^--grid a=1:2:x1: bad range"):
        parse_axis("a=1:2:x1")
