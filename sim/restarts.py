"""Restarts and deploys: the collector's successive lives on one clock.

The seed's monitor loop restarted its Celery worker and beat, and every deploy
(``deploy_update.sh``) wiped Redis and forced a recharge pause (seed-system.md
§1.2). `Lives` runs the collector so: with ``restart_every_s`` or
``deploy_every_s`` set, each life has its own `LifeRuntime`, and a crash ends
it. Every SimPy process the life spawned is interrupted where it waits (its
coroutine is closed, ``sim.runtime.drive``), so its memory (beliefs, claims,
the recent run's pace, queued runs) and any chunk not yet committed are lost.
Calls in flight still reach the server and are charged when they complete
(the server charges on completion), but nobody reads their answer. The
storage, the server and the recorder go on, and a new `Collector` starts on
them at once, its beat triggering every periodic task as at time 0.

A restart keeps the shared token state (Redis survives a worker restart: with
``processes`` above 1 and ``shared_belief``, the new processes adopt the old
`SharedBelief`); a lone process's belief is its memory and is lost. A deploy
wipes it: the next reservation's INCRBYFLOAT starts from 0, rate and refill
phase are unknown, and the recharge flag is set at the deploy's time.

Restart and deploy times come from their own random streams (``<seed>/restarts``,
``<seed>/deploys``) when ``restart_random``, so runs with and without stay paired.
"""

from __future__ import annotations

import math
import random
from collections.abc import Coroutine, Iterator
from typing import Any

import simpy

from collector.app import Collector
from collector.belief import SharedBelief, SharedTokenManager
from collector.config import Config
from collector.runtime import Request, Response
from collector.storage import Storage
from collector.tokens import RECHARGING, SPENDING, TokenManager
from sim.keepa import MockKeepa
from sim.keepa.server import Pending
from sim.recorder import Recorder
from sim.runtime import Event, SimRuntime, answer, drive, to_ms

RESTART, DEPLOY = "restart", "deploy"


class LifeRuntime(SimRuntime):
    """A `SimRuntime` that knows what its life has running, so that a crash can end it."""

    def __init__(self, env: simpy.Environment, server: MockKeepa, start_ms: int,
                 rng: random.Random, unread: list[Pending]):
        super().__init__(env, server, start_ms, 0, rng=rng)
        self.unread = unread  # the calls crashes left in flight, once the server did them
        self.processes: dict[simpy.Process, None] = {}  # alive, in the order spawned
        self.calls: dict[int, tuple[Pending, int]] = {}  # in flight: ticket -> (call, due ms)
        self._tickets = 0
        self.dead = False

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if self.dead:  # a crashed task's `finally` may hand work on: nothing starts
            coroutine.close()
            return
        process = self.env.process(drive(coroutine))
        self.processes[process] = None
        process.callbacks.append(self._ended)

    def _ended(self, process: simpy.Process) -> None:
        self.processes.pop(process, None)

    async def send(self, request: Request) -> Response:
        params = {**request.params, "key": self.key}
        pending = self.server.begin(request.path, params, self.start_ms + self.env.now)
        self._tickets += 1
        ticket = self._tickets
        self.calls[ticket] = (pending, self.env.now + pending.latency_ms)
        if pending.latency_ms:
            await Event(self.env.timeout(pending.latency_ms))
        del self.calls[ticket]
        return answer(*self.server.finish(pending, self.start_ms + self.env.now))

    def crash(self) -> None:
        """End the life now: its calls in flight complete unread, its processes stop."""
        self.dead = True
        for pending, due in self.calls.values():
            self.env.process(self._unread(pending, due))
        self.calls.clear()
        for process in self.processes:
            if process.is_alive:
                process.interrupt(RESTART)
        self.processes.clear()

    def _unread(self, pending: Pending, due_ms: int):
        """A call the crash left in flight: the server does it and charges it all the same."""
        yield self.env.timeout(due_ms - self.env.now)
        self.server.finish(pending, self.start_ms + self.env.now)
        self.unread.append(pending)


class Lives:
    """The collector on `storage`, `server` and `recorder`, restarted and redeployed as
    the config says; `collector` is the life running now. With neither knob set there
    is one life on a plain `SimRuntime`, exactly as without this class."""

    def __init__(self, env: simpy.Environment, server: MockKeepa, storage: Storage,
                 recorder: Recorder, config: Config, seed: int, start_ms: int):
        self.env, self.server, self.storage, self.recorder = env, server, storage, recorder
        self.config, self.start_ms = config, start_ms
        self.rng = random.Random(f"{seed}/client")  # one stream across lives
        self.scheduled = config.restart_every_s is not None or config.deploy_every_s is not None
        self.events: list[tuple[float, str]] = []  # (time s, RESTART or DEPLOY)
        self.unread: list[Pending] = []
        self.collector = self._life(None)
        if self.scheduled:
            env.process(self._schedule(seed))

    def figures(self) -> dict:
        """The summary's figures of the crashes (none when nothing restarts, so those
        summaries stay as they were): restarts (deploys included), deploys, and the
        calls they left in flight, which the server did and charged unread."""
        if not self.scheduled:
            return {}
        kinds = [kind for _, kind in self.events]
        return {"restarts": len(kinds), "deploys": kinds.count(DEPLOY),
                "unread_calls": len(self.unread),
                "unread_tokens": float(sum(pending.cost for pending in self.unread))}

    def crash(self, kind: str) -> None:
        """End the running life and start the next (a `RESTART` or a `DEPLOY`)."""
        self.collector.runtime.crash()
        self.events.append((self.env.now / 1000, kind))
        self.collector = self._life(kind)

    def _life(self, kind: str | None) -> Collector:
        runtime = (LifeRuntime(self.env, self.server, self.start_ms, self.rng, self.unread)
                   if self.scheduled
                   else SimRuntime(self.env, self.server, self.start_ms, 0, rng=self.rng))
        collector = Collector(runtime, self.config, self.storage, self.recorder)
        if kind == RESTART:
            _keep_shared(self.collector, collector)
        elif kind == DEPLOY:
            _wipe(collector, runtime.now())
        if kind is not None:
            self._mode_changed(collector, runtime.now())
        collector.start()
        return collector

    def _mode_changed(self, collector: Collector, now: float) -> None:
        """Tell the recorder if the new life's mode is not the one it last heard of."""
        modes = [process.tokens.mode for process in collector.processes]
        mode = RECHARGING if RECHARGING in modes else SPENDING
        last = self.recorder.modes[-1][1] if self.recorder.modes else SPENDING
        if mode != last:
            self.recorder.on_mode(now, mode)

    def _schedule(self, seed: int):
        """The crashes, as their times come: a deploy when both fall at once."""
        config = self.config

        def stream(name: str) -> random.Random | None:
            return random.Random(f"{seed}/{name}") if config.restart_random else None

        restarts = _times(config.restart_every_s, stream("restarts"))
        deploys = _times(config.deploy_every_s, stream("deploys"))
        next_restart, next_deploy = next(restarts), next(deploys)
        while (at := min(next_restart, next_deploy)) < math.inf:
            yield self.env.timeout(at - self.env.now)
            self.crash(DEPLOY if next_deploy == at else RESTART)
            if next_restart == at:
                next_restart = next(restarts)
            if next_deploy == at:
                next_deploy = next(deploys)


def _times(mean_s: float | None, rng: random.Random | None) -> Iterator[float]:
    """Clock times (ms) every `mean_s`, or at exponential intervals of that mean drawn
    from `rng`; for ever at infinity if `mean_s` is unset."""
    at = 0
    while mean_s is not None:
        at += to_ms(rng.expovariate(1 / mean_s) if rng else mean_s)
        yield at
    while True:
        yield math.inf


def _keep_shared(old: Collector, new: Collector) -> None:
    """A restart: the new processes adopt the old processes' shared belief (Redis)."""
    kept = next((p.tokens.shared for p in old.processes
                 if isinstance(p.tokens, SharedTokenManager)), None)
    for process in new.processes:
        if kept is not None and isinstance(process.tokens, SharedTokenManager):
            process.tokens.shared = kept


def _wipe(collector: Collector, now: float) -> None:
    """A deploy (seed-system.md §1.2): FLUSHALL empties the token keys, so the balance
    starts from 0 with rate and refill phase unknown; force_pause.py then sets the
    recharge flag and its start time. Every process's belief starts so."""
    config = collector.config
    wiped = SharedBelief(config.refill_rate, 0.0, now, mode=RECHARGING, recharge_since=now)
    for process in collector.processes:
        tokens = process.tokens
        if isinstance(tokens, SharedTokenManager):
            tokens.shared = wiped
            continue
        fresh = TokenManager.restore(config, {**vars(wiped), "last_call": {}})
        fresh.observer = tokens.observer
        process.client.tokens = fresh
        tokens.observer.on_mode(now, RECHARGING)
