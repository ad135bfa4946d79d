"""The sweep's plots: every one written, every axis labelled with units, legends."""

from __future__ import annotations

import pytest

from sim.plots import curve, draw_all, front_of, heatmap, pareto, sawtooth, unit
from sim.store import Store
from sim.sweep import METRIC, Spec, aggregate

FILES = {"curve_batch_size+chunk_size", "curve_min_interval_s", "pareto", "sawtooth_refill5",
         "sawtooth_refill20", "heatmap_batch_size+chunk_size_min_interval_s"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from click.testing import CliRunner

    from sim.cli import main

    out = tmp_path_factory.mktemp("sweep")
    result = CliRunner().invoke(main, [
        "sweep", "--preset", "fixed", "--hours", "2", "--seeds", "2", "--refill", "5,20",
        "--workers", "1",
        "--grid", "batch_size+chunk_size=1,4", "--grid", "min_interval_s=1,60",
        "--no-plots", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    store = Store(out)
    return out, Spec.from_manifest(store.manifest()), store.table()


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_sim_plot_redraws_every_plot_from_saved_results(sim, results, fmt):
    out, _, _ = results
    result = sim("plot", str(out), "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert "best configs" in result.stdout
    written = {p.stem for p in out.glob(f"*.{fmt}")}
    assert written == FILES
    assert all(p.stat().st_size > 5000 for p in out.glob(f"*.{fmt}"))


def test_every_axis_is_labelled_with_units_and_has_a_legend(results):
    _, spec, table = results
    points = aggregate(table, ["refill", *spec.knobs], [METRIC, "freshness_p95_s"])
    best = {r: g.loc[g[METRIC].idxmax()] for r, g in points.groupby("refill", sort=False)}
    jobs = {job.run_id: job for job in spec.jobs()}
    batch, interval = spec.axes
    figures = [curve(table, points, best, spec, interval), heatmap(points, best, spec, batch,
                                                                   interval),
               sawtooth(table, spec, jobs, 5.0), pareto(points, spec)]
    for fig in figures:
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                assert "deals stored per hour" in ax.get_ylabel()
                continue
            assert "(" in ax.get_xlabel() and "(" in ax.get_ylabel(), ax.get_title()
    curve_ax = figures[0].axes[0]
    assert curve_ax.get_xlabel() == "min_interval_s (s)"
    assert {t.get_text()[:16] for t in curve_ax.get_legend().get_texts()} == {
        "5 tokens/min, ot", "20 tokens/min, o", "5 tokens/min, me", "20 tokens/min, m"}
    saw = figures[2].axes[0]
    assert saw.get_xlabel() == "simulated time (h)" and saw.get_ylabel() == "balance (tokens)"
    assert {"server balance (truth)", "client estimate (belief)"} <= {
        t.get_text() for t in saw.get_legend().get_texts()}
    assert len(saw.get_lines()[0].get_xdata()) == 2 * 60  # one sample a simulated minute


def test_the_pareto_front_has_the_points_and_says_when_there_are_none(results):
    _, spec, table = results
    points = aggregate(table, ["refill", *spec.knobs], [METRIC, "freshness_p95_s"])
    ax = pareto(points, spec).axes[0]
    assert ax.get_xscale() == "log" and len(ax.get_legend().get_texts()) == 4
    empty = pareto(points.assign(freshness_p95_s=float("nan")), spec).axes[0]
    assert empty.get_legend() is None
    assert "freshness is undefined" in empty.texts[0].get_text()


def test_the_sawtooth_reruns_the_stored_runs_exactly(results, tmp_path):
    """The plots re-run the best and worst runs; a run is a pure function of its row."""
    _, spec, table = results
    jobs = {job.run_id: job for job in spec.jobs()}
    assert set(table["run_id"]) == set(jobs)
    from sim.sweep import measure
    row = table.loc[table[METRIC].idxmax()]
    assert measure(jobs[row["run_id"]])[METRIC] == row[METRIC]
    assert draw_all(table, spec, tmp_path, "png")


def test_pareto_front():
    points = [(10, 5), (20, 8), (15, 4), (30, 8), (5, 1), (25, 9)]
    assert front_of(points) == [(5, 1), (10, 5), (20, 8), (25, 9)]


@pytest.mark.parametrize("key, expected", [
    ("min_interval_s", "s"), ("burst_threshold", "tokens"), ("batch_size", "ASINs per call"),
    ("chunk_size", "deals per chunk"), ("market.arrivals_per_hour", "deals/h"),
])
def test_units(key, expected):
    assert unit(key) == expected
