"""`sim compare`: presets side by side on the sweep's machinery: table, CSV, plot,
resume, and bad input refused before any run."""

from __future__ import annotations

import pandas as pd
import pytest

from collector.presets import PRESETS
from sim.compare import Comparison, load, markdown, summarize
from sim.engine import simulate
from sim.plots import bound_curves
from sim.settings import build
from sim.store import JOURNAL

SMALL = ["--refill", "5,60", "--presets", "seed-before,fixed", "--hours", "1",
         "--seeds", "2", "--workers", "1"]
RUNS = 2 * 2 * 2  # rates x presets x seeds
COLUMNS = ("| refill/min | preset | deals/h | fraction_of_bound | bound_by | token_utilization "
           "| tokens_per_deal | freshness_p95_s | stale_p95_s | 429s | max_gap_s |")


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """One small comparison, run once for the tests that only read it."""
    from click.testing import CliRunner

    from sim.cli import main

    out = tmp_path_factory.mktemp("compare") / "c"
    result = CliRunner().invoke(main, ["compare", *SMALL, "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return out, result


def test_the_table_csv_and_plot_are_written(compared):
    out, result = compared
    lines = result.stdout.splitlines()
    at = lines.index(COLUMNS)
    rows = [line.split(" | ")[:2] for line in lines[at + 2:at + 2 + 4]]
    assert rows == [["| 5", "seed-before"], ["| 5", "fixed"], ["| 60", "seed-before"],
                    ["| 60", "fixed"]]  # rate by rate, presets in the order given
    assert (out / "compare.md").read_text().strip() in result.stdout
    points = pd.read_csv(out / "compare.csv")
    assert list(zip(points.refill, points.preset)) == [(5, "seed-before"), (5, "fixed"),
                                                       (60, "seed-before"), (60, "fixed")]
    assert {"deals_per_hour", "deals_per_hour_ci", "fraction_of_bound", "bound_by",
            "token_utilization", "tokens_per_deal", "freshness_p95_s", "stale_p95_s",
            "http_429", "max_gap_s", "n"} <= set(points.columns)
    assert (points.n == 2).all()
    runs = pd.read_parquet(out / "results.parquet")
    assert len(runs) == RUNS
    mean = runs[(runs.refill == 60) & (runs.preset == "fixed")].deals_per_hour.mean()
    assert points.set_index(["refill", "preset"]).loc[(60, "fixed"), "deals_per_hour"] == \
        pytest.approx(mean)
    assert (out / "fraction_of_bound.png").stat().st_size > 5000


def test_each_row_is_the_preset_run_alone_in_the_shared_world(compared):
    out, _ = compared
    runs = pd.read_parquet(out / "results.parquet").set_index(["preset", "refill", "seed"])
    for preset in ("seed-before", "fixed"):
        config, scenario = build(preset, None, [], 60, 1, 1)
        alone = simulate(config, scenario).summary
        row = runs.loc[(preset, 60, 1)]
        assert row["deals_per_hour"] == alone["deals_per_hour"]
        assert row["tokens_consumed"] == alone["tokens_consumed"]


def test_a_process_pool_gives_the_same_runs(sim, compared, tmp_path):
    out, _ = compared
    pool = tmp_path / "pool"
    result = sim("compare", *SMALL, "--workers", "2", "--out", str(pool))
    assert result.exit_code == 0, result.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(pool / "results.parquet").drop(columns="wall_s"),
                                  pd.read_parquet(out / "results.parquet").drop(columns="wall_s"))


def test_a_second_invocation_skips_the_stored_runs(sim, compared, monkeypatch):
    out, first = compared
    journal = (out / JOURNAL).read_bytes()
    monkeypatch.setattr("sim.sweep.measure", lambda job: pytest.fail("a stored run ran again"))
    again = sim("compare", *SMALL, "--out", str(out))
    assert again.exit_code == 0, again.stderr
    assert f"{RUNS} of {RUNS} runs already in" in again.stderr
    assert (out / JOURNAL).read_bytes() == journal
    assert again.stdout.splitlines()[:8] == first.stdout.splitlines()[:8]


def test_sim_plot_redraws_a_compare_folder(sim, compared):
    out, first = compared
    (out / "compare.md").unlink()
    (out / "fraction_of_bound.png").unlink()
    result = sim("plot", str(out))
    assert result.exit_code == 0, result.stderr
    assert COLUMNS in result.stdout
    assert (out / "compare.md").read_text().strip() in first.stdout
    assert (out / "fraction_of_bound.png").stat().st_size > 5000


def test_a_compare_folder_loads_back(compared):
    out, _ = compared
    comparison, table = load(out)
    assert comparison.presets == ("seed-before", "fixed")
    assert comparison.refills == (5.0, 60.0) and comparison.seeds == (0, 1)
    assert len(table) == RUNS


@pytest.mark.parametrize("args, needle", [
    (["--presets", "fixed,bogus"], "--presets fixed,bogus: unknown preset 'bogus'"),
    (["--presets", ""], "--presets : an empty preset name"),
    (["--presets", "fixed,fixed"], "fixed is named twice"),
    (["--refill", ""], "--refill : empty list of values"),
    (["--refill", "5,-1"], "--refill -1: refill_rate: must be > 0"),
    (["--set", "nope=1"], "unknown config key 'nope'"),
    (["--set", "chunk_size=0"], "chunk_size: must be > 0, got 0"),
    (["--set", "market.backlog=-1"], "market.backlog: must be >= 0"),
    (["--set", "server.bogus=1"], "unknown config key 'server.bogus'"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_runs(sim, tmp_path, monkeypatch, args,
                                                       needle):
    monkeypatch.setattr("sim.sweep.measure", lambda job: pytest.fail("a run started"))
    out = tmp_path / "out"
    result = sim("compare", "--refill", "5", "--hours", "1", "--workers", "1",
                 "--out", str(out), *args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stderr.count("\n") == 1
    assert not out.exists()


def test_default_presets_are_every_preset_in_order_including_new_ones(monkeypatch):
    monkeypatch.setitem(PRESETS, "added-later", PRESETS["fixed"].updated({"chunk_size": 3}))
    comparison = Comparison.from_options(None, [], [5.0], 1, 1)
    assert comparison.presets == tuple(PRESETS)
    assert comparison.presets[-1] == "added-later"
    assert [job.columns["preset"] for job in comparison.jobs()] == list(PRESETS)


def test_set_reaches_every_preset_and_every_world(monkeypatch):
    comparison = Comparison.from_options("seed-before,fixed,reactive",
                                         ["chunk_size=3", "market.backlog=500"], [5.0, 20.0],
                                         1, 2)
    jobs = comparison.jobs()
    assert len(jobs) == 3 * 2 * 2
    assert {job.config.chunk_size for job in jobs} == {3}
    assert {job.config.policy for job in jobs} == {"seed", "reactive"}  # still the presets
    for rate in (5.0, 20.0):
        for seed in (0, 1):
            worlds = {job.scenario for job in jobs
                      if job.scenario.server.rate == rate and job.scenario.seed == seed}
            assert len(worlds) == 1 and next(iter(worlds)).market.backlog == 500


def test_a_comparison_without_rates_is_refused():
    with pytest.raises(ValueError, match="empty list of rates"):
        Comparison(("fixed",), (), (), 1, (0,)).jobs()


def test_presets_that_are_the_same_config_are_refused():
    comparison = Comparison.from_options("seed-before,seed-after",
                                         ["min_interval_s=1", "chunk_size=4", "batch_size=4",
                                          "trigger_recent_after_chunk=false"], [5.0], 1, 1)
    with pytest.raises(ValueError, match="seed-before and seed-after are the same config"):
        comparison.jobs()


def test_bound_by_lists_each_binding_resource_and_one_seed_has_no_interval():
    table = pd.DataFrame({
        "refill": [5.0, 5.0, 5.0, 20.0], "preset": ["a", "a", "a", "a"], "seed": [0, 1, 2, 0],
        "bound_by": ["tokens", "market", "tokens", "market"],
        **{metric: [1.0, 2.0, 3.0, 4.0] for metric in
           ("deals_per_hour", "fraction_of_bound", "token_utilization", "tokens_per_deal",
            "stale_p95_s", "http_429", "max_gap_s")},
        "freshness_p95_s": [None, None, None, None]})
    points = summarize(table).set_index("refill")
    assert points.loc[5.0, "bound_by"] == "tokens/market"
    assert points.loc[5.0, "deals_per_hour"] == 2.0
    text = markdown(points.reset_index(), Comparison(("a",), (), (5.0, 20.0), 1, (0, 1, 2)))
    assert "| 5 | a | 2.00 ± 2.48 |" in text  # t(0.975, 2) x 1 / sqrt(3)
    assert "| 20 | a | 4.00 | " in text  # one seed: no interval
    assert text.splitlines()[-1].split(" | ")[7] == "-"  # no freshness: no figure


def test_the_plot_has_labelled_axes_a_log_rate_axis_and_a_legend_beside_it(compared):
    out, _ = compared
    points = summarize(load(out)[1])
    fig = bound_curves(points, 2, 1)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert "(tokens/min" in ax.get_xlabel() and "(" in ax.get_ylabel()
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["the bound", "seed-before", "fixed"]
    fig.draw_without_rendering()
    assert not legend.get_window_extent().overlaps(ax.get_window_extent())
    bars = ax.containers  # one errorbar line per preset, over both rates
    assert [bar.get_label() for bar in bars] == ["seed-before", "fixed"]
    shifts = [bar.lines[0].get_xdata() / [5.0, 60.0] for bar in bars]
    for low, high in shifts:  # both rates of a preset moved alike, by at most 0.05 decade
        assert low == pytest.approx(high) and 10**-0.05 <= low <= 10**0.05
    assert shifts[0][0] < shifts[1][0]  # each preset its own shift, in order
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= 1
