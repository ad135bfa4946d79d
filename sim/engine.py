"""One simulated run: the collector, the mock Keepa and a recorder on one clock."""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from dataclasses import dataclass

import simpy

from collector.app import Collector
from collector.config import Config
from collector.storage import MemoryStorage
from sim.bound import bound, bound_figures
from sim.keepa import DealMarket, MockKeepa
from sim.recorder import Recorder, Sample
from sim.runtime import SimRuntime
from sim.settings import Scenario

START_MS = 1_770_508_800_000  # 2026-02-08T00:00Z, the day of the seed's stall
SAMPLE_S = 60
GC_EVERY = 50_000  # allocations between young-generation collections during a run (default 700)


@dataclass
class Run:
    """A finished run: the summary and what it was made from."""

    summary: dict
    recorder: Recorder
    collector: Collector
    server: MockKeepa


def simulate(config: Config, scenario: Scenario) -> Run:
    with _rare_collections():
        return _simulate(config, scenario)


@contextmanager
def _rare_collections():
    """Let Python's cycle collector run rarely during a run. A run makes hundreds of
    thousands of short-lived objects (Keepa's answers, freed by reference counting)
    and few cycles, so at the default thresholds collections that find almost
    nothing took up to half of a big plan's run."""
    before = gc.get_threshold()
    gc.set_threshold(GC_EVERY, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _simulate(config: Config, scenario: Scenario) -> Run:
    wall = time.perf_counter()
    env = simpy.Environment()
    market = DealMarket(scenario.market, scenario.seed, START_MS)
    server = MockKeepa(scenario.server, market, scenario.seed, START_MS)
    runtime = SimRuntime(env, server, START_MS, scenario.seed)
    recorder = Recorder()
    collector = Collector(runtime, config, MemoryStorage(), recorder)
    collector.start()
    horizon_ms = round(scenario.hours * 3_600_000)
    env.process(_sample(env, server, collector, recorder))
    env.run(until=horizon_ms)
    market.advance(START_MS + horizon_ms)
    server.bucket.advance(START_MS + horizon_ms)
    arrived = {a: (ms - START_MS) / 1000 for a, ms in market.arrived_ms.items()}
    summary = recorder.summary(horizon_ms / 1000, server.bucket, arrived)
    stored = list(dict.fromkeys(asin for _, asin in recorder.stored))
    summary |= bound_figures(summary, bound(config, server, horizon_ms / 1000, stored,
                                            summary["deals_processed"]))
    summary["wall_s"] = time.perf_counter() - wall
    return Run(summary, recorder, collector, server)


def _sample(env: simpy.Environment, server: MockKeepa, collector: Collector, recorder: Recorder):
    """Once a simulated minute: the server's balance beside the client's estimate."""
    while True:
        now_s = env.now / 1000
        server.bucket.advance(START_MS + env.now)
        recorder.samples.append(Sample(now_s, server.bucket.balance,
                                       collector.tokens.estimate(now_s), collector.tokens.mode))
        yield env.timeout(SAMPLE_S * 1000)
