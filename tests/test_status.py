"""`collector status`: the TokenManager rebuilt from the database says what the live one says."""

from __future__ import annotations

import asyncio
import json
import math
import time

import pytest
from click.testing import CliRunner

from collector.app import Collector
from collector.cli import main as collector_main
from collector.config import Config
from collector.live.runtime import LiveRuntime
from collector.live.sqlite import SQLiteStorage
from collector.live.stats import LiveStats
from collector.live.status import render, report
from collector.tokens import RECHARGING, TokenManager
from sim.keepa import DealMarket, MarketSettings, MockKeepa, ServerSettings
from sim.transport import MockTransport, wall_ms

CONFIG = Config.load("fixed", overrides=[
    "chunk_overhead_s=0", "commit_overhead_s=0", "dispatch_overhead_s=0", "min_interval_s=0",
    "refill_rate=60", "recharge_timeout_s=none"])


@pytest.mark.parametrize("reading", [True, False])
def test_a_snapshot_restores_to_the_same_belief_on_another_clock(reading):
    tokens = TokenManager(CONFIG, now=3.0)
    if reading:
        tokens.observe({"tokensLeft": 40, "refillRate": 60, "refillIn": 12_500}, 5.0)
    tokens.reserve("backfill", 55.0, 7.5)
    tokens.set_mode(RECHARGING, 7.5)
    offset = 1_770_000_000.0
    again = TokenManager.restore(CONFIG, json.loads(json.dumps(tokens.export(offset))))
    for t in (7.5, 17.0, 18.0, 80.0, 400.0, 5000.0):
        assert again.state(t + offset) == tokens.state(t)
        assert again.eta(500.0, t + offset) == pytest.approx(tokens.eta(500.0, t))
    assert again.last_call == {"backfill": 7.5 + offset}


def test_status_asks_the_rebuilt_manager_and_agrees_with_the_running_one(tmp_path):
    """Run a collector on an empty 60/min bucket until it recharges, save its belief as the
    live loop does, then compare `collector status` with the running manager itself."""
    db = tmp_path / "deals.sqlite"

    async def live():
        start = wall_ms()
        server = MockKeepa(ServerSettings(rate=60, initial=30, latency=False),
                           DealMarket(MarketSettings(backlog=200), 4, start), 4, start)
        runtime = LiveRuntime(MockTransport(server))
        offset = time.time() - runtime.now()
        storage = SQLiteStorage(db)
        run = storage.begin_run("http://mock", 1, CONFIG.to_dict())
        stats = LiveStats()
        collector = Collector(runtime, CONFIG, storage, stats)
        collector.start()
        while collector.tokens.mode != RECHARGING:
            await asyncio.sleep(0.02)
        await runtime.stop()
        storage.heartbeat(run, collector.tokens.export(offset), stats.as_dict(offset))
        now = runtime.now()
        return collector.tokens.state(now), report(str(db), now + offset)

    state, status = asyncio.run(live())
    assert status["alive"] and status["run"]["heartbeat_age_s"] < 5
    tokens = status["tokens"]
    assert tokens["mode"] == state.mode == RECHARGING
    assert tokens["estimate"] == pytest.approx(state.estimate)
    assert tokens["target"] == state.target == CONFIG.burst_target(60)
    assert tokens["eta_s"] == pytest.approx(state.eta_s, abs=1e-6)
    assert 0 < tokens["eta_s"] < math.inf
    assert tokens["next_call_reason"] == "recharge"
    assert tokens["next_call_s"] == pytest.approx(state.eta_s, abs=1e-6)
    text = render(status)
    assert "collector   alive: run 1" in text
    assert "tokens      recharging: estimate" in text and "target 280" in text
    assert "next burst  in " in text and "(recharge)" in text


def test_status_of_a_collector_that_was_killed(tmp_path):
    db = tmp_path / "deals.sqlite"
    storage = SQLiteStorage(db, clock=lambda: 1000.0)
    run = storage.begin_run("http://mock", 1, CONFIG.to_dict())
    storage.heartbeat(run, TokenManager(CONFIG, now=0.0).export(1000.0), LiveStats().as_dict(0))
    status = report(str(db), now=1300.0)
    assert not status["alive"] and status["run"]["heartbeat_age_s"] == 300.0
    assert "stopped heartbeating 5m00s ago without ending (killed?)" in render(status)
    storage.end_run(run, "stopped by SIGTERM")
    assert "not running: run 1 stopped by SIGTERM" in render(report(str(db), now=1300.0))


def test_status_command_text_and_json(tmp_path):
    db = tmp_path / "deals.sqlite"
    SQLiteStorage(db).close()
    runner = CliRunner()
    text = runner.invoke(collector_main, ["status", "--db", str(db)])
    assert text.exit_code == 0 and "never ran on this database" in text.stdout
    assert "watermark   not set yet" in text.stdout
    as_json = runner.invoke(collector_main, ["status", "--db", str(db), "--json"])
    assert json.loads(as_json.stdout)["deals_stored"] == 0
