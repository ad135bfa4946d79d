"""One simulated run: the collector, the mock Keepa and a recorder on one clock."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import simpy

from collector.app import Collector
from collector.config import Config
from collector.storage import MemoryStorage, Storage
from sim.bound import bound, bound_figures
from sim.keepa import DealMarket, MockKeepa
from sim.recorder import Recorder, Sample
from sim.restarts import Lives
from sim.settings import Scenario

START_MS = 1_770_508_800_000  # 2026-02-08T00:00Z, the day of the seed's stall
SAMPLE_S = 60
GC_EVERY = 50_000  # allocations between young-generation collections during a run (default 700)


@dataclass
class Run:
    """A finished run: the summary and what it was made from; `collector` is its last
    life, `restarts` when each crash came, as (time s, "restart" or "deploy")."""

    summary: dict
    recorder: Recorder
    collector: Collector
    server: MockKeepa
    restarts: list[tuple[float, str]] = field(default_factory=list)


StorageFactory = Callable[[Callable[[], float]], Storage]
"""Makes a run's storage, handed the run's clock (unix seconds of simulated time)."""


def simulate(config: Config, scenario: Scenario, storage: StorageFactory | None = None) -> Run:
    """Run `config` in `scenario`. The deals are kept in memory unless `storage` makes
    another store (the crash tests run the live collector's SQLite on the clock)."""
    with _rare_collections():
        return _simulate(config, scenario, storage)


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


def _simulate(config: Config, scenario: Scenario, storage: StorageFactory | None) -> Run:
    wall = time.perf_counter()
    env = simpy.Environment()
    market = DealMarket(scenario.market, scenario.seed, START_MS)
    server = MockKeepa(scenario.server, market, scenario.seed, START_MS)
    recorder = Recorder()
    store = MemoryStorage() if storage is None else storage(lambda: (START_MS + env.now) / 1000)
    lives = Lives(env, server, store, recorder, config, scenario.seed, START_MS)
    horizon_ms = round(scenario.hours * 3_600_000)
    env.process(_sample(env, server, lives, recorder))
    env.run(until=horizon_ms)
    market.advance(START_MS + horizon_ms)
    server.bucket.advance(START_MS + horizon_ms)
    arrived = {a: (ms - START_MS) / 1000 for a, ms in market.arrived_ms.items()}
    summary = recorder.summary(horizon_ms / 1000, server.bucket, arrived) | lives.figures()
    stored = list(dict.fromkeys(asin for _, asin in recorder.stored))
    summary |= bound_figures(summary, bound(config, server, horizon_ms / 1000, stored,
                                            summary["deals_processed"]))
    summary["wall_s"] = time.perf_counter() - wall
    return Run(summary, recorder, lives.collector, server, lives.events)


def _sample(env: simpy.Environment, server: MockKeepa, lives: Lives, recorder: Recorder):
    """Once a simulated minute: the server's balance beside the client's estimate, and
    the deals stored (`MemoryStorage.count` is a dict's length: no query)."""
    while True:
        now_s = env.now / 1000
        collector = lives.collector  # the life running now
        server.bucket.advance(START_MS + env.now)
        recorder.samples.append(Sample(now_s, server.bucket.balance,
                                       collector.tokens.estimate(now_s), collector.tokens.mode,
                                       collector.storage.count()))
        yield env.timeout(SAMPLE_S * 1000)
