"""Small faults a new user found (issue 14, item 8), each pinned by a test.

`collector status` on a database whose clock the test holds: the deals of a
run counted from the deals themselves, no next call for a collector that is
not running, an uptime that stops with the run. Then the plots: the sawtooth's
legend beside its axes with the server's line on top, heatmap labels black or
white by their cell's luminance, experiment 4's legend below both panels.
"""

from __future__ import annotations

import pytest
from matplotlib.colors import to_rgba

from collector.config import Config
from collector.live.sqlite import SQLiteStorage
from collector.live.stats import LiveStats
from collector.live.status import render, report
from collector.storage import Cursor, StoredDeal
from collector.tokens import TokenManager
from experiments.e4_diagnostic import _figure as e4_figure
from sim.plots import heatmap, sawtooth, text_colour
from sim.store import Store
from sim.sweep import METRIC, Spec, aggregate

CONFIG = Config.load("seed-after", overrides=["refill_rate=60"])


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def deals(*asins: str) -> list[StoredDeal]:
    return [StoredDeal(asin, "backfill", 8_000_000) for asin in asins]


@pytest.fixture
def db(tmp_path):
    """A database whose first run started at t=1000 and stored three deals at 1001, with a
    heartbeat from before that commit (the counters in it still say 0 stored)."""
    clock = Clock(1000.0)
    storage = SQLiteStorage(tmp_path / "deals.sqlite", clock=clock)
    run = storage.begin_run("http://mock", 1, CONFIG.to_dict())
    storage.heartbeat(run, TokenManager(CONFIG, now=0.0).export(1000.0),
                      LiveStats().as_dict(1000.0))
    clock.t = 1001.0
    storage.commit(deals("B1", "B2", "B3"), 1.0, cursor=Cursor(0, 3))
    yield storage, clock, run
    storage.close()


def test_deals_by_this_run_are_counted_from_the_deals_not_the_last_heartbeat(db):
    storage, clock, run = db
    status = report(str(storage.path), now=1001.5)
    assert status["alive"] and status["run"]["stored"] == 0  # the heartbeat's counters lag
    assert status["deals_stored"] == status["run"]["new_deals"] == 3
    assert "deals       3 stored (backfill 3); 3 first stored by run 1" in render(status)
    # a second run counts what it stored first, not what the first run left
    storage.end_run(run, "stopped by SIGTERM")
    clock.t = 1100.0
    storage.begin_run("http://mock", 1, CONFIG.to_dict())
    clock.t = 1101.0
    storage.commit(deals("B3", "B4"), 1.0)
    again = report(str(storage.path), now=1102.0)
    assert again["deals_stored"] == 4 and again["run"]["new_deals"] == 1
    assert "; 1 first stored by run 2" in render(again)


def test_a_collector_that_is_not_running_has_no_next_call(db):
    storage, clock, run = db
    alive = report(str(storage.path), now=1002.0)
    assert alive["tokens"]["next_call_s"] == 0.0
    assert "next burst  now (spending); next call now" in render(alive)
    killed = report(str(storage.path), now=1300.0)  # stopped heartbeating, never ended
    storage.end_run(run, "stopped by SIGTERM")
    ended = report(str(storage.path), now=1300.0)
    for status in (killed, ended):
        assert not status["alive"]
        assert status["tokens"]["next_call_s"] is None
        assert status["tokens"]["next_call_reason"] is None
        text = render(status)
        assert "next call now" not in text and "next burst  now" not in text
        assert "next burst  none: the collector is not running" in text
        assert "tokens      stopped while spending: estimate" in text


def test_uptime_stops_when_the_run_ends(db):
    storage, clock, run = db
    assert report(str(storage.path), now=1005.0)["run"]["up_s"] == 5.0
    # killed: up until its last heartbeat (at 1000), however long ago
    assert report(str(storage.path), now=5000.0)["run"]["up_s"] == 0.0
    clock.t = 1012.0
    storage.end_run(run, "stopped after 12 s")
    for now in (1013.0, 5000.0, 90_000.0):
        status = report(str(storage.path), now=now)
        assert status["run"]["up_s"] == 12.0
    assert "collector   not running: run 1 stopped after 12 s" in render(status)


# -- the plots ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from click.testing import CliRunner

    from sim.cli import main

    out = tmp_path_factory.mktemp("sweep")
    result = CliRunner().invoke(main, [
        "sweep", "--preset", "fixed", "--hours", "0.5", "--seeds", "1", "--refill", "20",
        "--workers", "1", "--grid", "batch_size+chunk_size=1,4",
        "--grid", "min_interval_s=1,60", "--no-plots", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    store = Store(out)
    spec, table = Spec.from_manifest(store.manifest()), store.table()
    points = aggregate(table, ["refill", *spec.knobs], [METRIC, "freshness_p95_s"])
    best = {r: g.loc[g[METRIC].idxmax()] for r, g in points.groupby("refill", sort=False)}
    return spec, table, points, best


def extents(fig):
    """Draw `fig` (laying it out) and return the renderer its extents are measured with."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def test_the_sawtooth_legend_is_beside_the_data_and_the_server_line_on_top(sweep):
    spec, table, _, _ = sweep
    fig = sawtooth(table, spec, {job.run_id: job for job in spec.jobs()}, 20.0)
    renderer = extents(fig)
    for ax in fig.axes:
        legend = ax.get_legend().get_window_extent(renderer)
        box = ax.get_window_extent(renderer)
        assert legend.x0 >= box.x1  # wholly to the right: it covers no data
        server, client = ax.get_lines()[:2]
        assert server.get_label() == "server balance (truth)"
        assert client.get_label() == "client estimate (belief)"
        assert server.get_zorder() > client.get_zorder()
        assert to_rgba(server.get_color()) != to_rgba(client.get_color())


def test_heatmap_labels_are_black_on_bright_cells_and_white_on_dark(sweep):
    spec, _, points, best = sweep
    fig = heatmap(points, best, spec, *spec.axes)
    ax = fig.axes[0]
    image = ax.images[0]
    cells = image.get_array()
    colours = set()
    for text in ax.texts:
        j, i = (round(v) for v in text.get_position())
        value = float(text.get_text())
        assert value == pytest.approx(cells[i, j], abs=0.05)
        expected = text_colour(image.cmap(image.norm(cells[i, j])))
        assert to_rgba(text.get_color()) == to_rgba(expected)
        colours.add(expected)
    assert colours == {"black", "white"}  # the grid's top cell is yellow, its bottom purple


@pytest.mark.parametrize("rgba, expected", [
    ((1, 1, 1, 1), "black"), ((0, 0, 0, 1), "white"), ((0.993, 0.906, 0.144, 1), "black"),
    ((0.267, 0.005, 0.329, 1), "white"), ((0.128, 0.567, 0.551, 1), "black"),
    ((0.2, 0.2, 0.8, 1), "white"),
])
def test_text_colour_by_luminance(rgba, expected):
    assert text_colour(rgba) == expected


def test_experiment_4_legend_covers_no_point():
    rules = ["80<10,280", "80<20,280"]
    rows = [{"rule": rule, "rate": rate, "manager": 80.0 if rate < 10 else 280.0,
             "status": 80.0 if rate < 10 else 280.0, "before_fix": 280.0,
             "copy": 80.0 if rate < 10 else 280.0}
            for rule in rules for rate in (1.0, 2.0, 5.0, 10.0, 20.0, 60.0)]
    fig = e4_figure(rows, rules)
    renderer = extents(fig)
    assert all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert all(box.y1 <= ax.get_window_extent(renderer).y0 for ax in fig.axes)  # below
    assert len(legend.get_texts()) == 4
