"""One collector task, two runtimes: SimPy's virtual clock and asyncio's real one.

The backfiller runs to the end of a small deal list against the same seeded
mock, starting below the recharge threshold so it must wait for a refill lump
1.5 s away. Both runs must make the same API calls in the same order.
"""

from __future__ import annotations

import asyncio

import simpy

from collector.app import Collector
from collector.backfill import backfill
from collector.config import Config
from collector.events import Observer
from collector.live.runtime import LiveRuntime
from collector.storage import MemoryStorage
from sim.keepa import DealMarket, MarketSettings, MockKeepa, ServerSettings
from sim.runtime import SimRuntime
from sim.transport import MockTransport, wall_ms

CONFIG = Config.load("fixed", overrides=[
    "refill_rate=600", "min_interval_s=0.02", "poll_token_endpoint=false",
    "chunk_overhead_s=0", "commit_overhead_s=0", "dispatch_overhead_s=0", "peek_filter=true"])
MARKET = MarketSettings(backlog=32, arrivals_per_hour=0)  # 23 calls with seed 11


class Calls(Observer):
    def __init__(self):
        self.sequence = []
        self.waited = []

    def on_call(self, record):
        self.sequence.append((record.path, record.items, record.status))

    def on_mode(self, t, mode):
        self.waited.append((mode, t))


def make_server(start_ms: int) -> MockKeepa:
    settings = ServerSettings(rate=600, initial=25, latency=False,
                              phase_ms=(start_ms + 1500) % 60_000)
    return MockKeepa(settings, DealMarket(MARKET, 11, start_ms), 11, start_ms)


def run_simulated() -> Calls:
    calls, env, start = Calls(), simpy.Environment(), 1_770_508_800_000
    runtime = SimRuntime(env, make_server(start), start, seed=3)
    runtime.spawn(backfill(Collector(runtime, CONFIG, MemoryStorage(), calls)))
    env.run()
    return calls


def run_live() -> Calls:
    calls = Calls()

    async def main():
        runtime = LiveRuntime(MockTransport(make_server(wall_ms())), seed=3)
        await backfill(Collector(runtime, CONFIG, MemoryStorage(), calls))

    asyncio.run(main())
    return calls


def test_backfill_makes_the_same_calls_under_simpy_and_asyncio():
    simulated, live = run_simulated(), run_live()
    assert simulated.sequence == live.sequence
    assert len(simulated.sequence) > 20
    assert ("deal", 1, 200) in simulated.sequence
    # both waited in recharge for the lump, for about the same time
    (_, sim_start), (_, sim_end) = simulated.waited[:2]
    (_, live_start), (_, live_end) = live.waited[:2]
    assert abs((sim_end - sim_start) - (live_end - live_start)) < 0.5
