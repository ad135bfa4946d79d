"""Beat, worker slots and no self-overlap, on the SimPy runtime."""

from __future__ import annotations

import simpy

from collector.events import Observer
from collector.scheduler import Scheduler
from sim.runtime import SimRuntime


class Log(Observer):
    def __init__(self):
        self.events = []

    def on_task(self, t, task, event, detail=""):
        self.events.append((t, task, event))


def make(workers: int):
    env, log = simpy.Environment(), Log()
    runtime = SimRuntime(env, server=None, start_ms=0, seed=0)
    return env, runtime, Scheduler(runtime, workers, observer=log), log


def test_a_running_task_skips_new_runs_and_beat_keeps_its_period():
    env, runtime, scheduler, log = make(workers=4)

    async def slow():
        await runtime.sleep(150)

    scheduler.add("slow", slow, period_s=60)
    scheduler.start()
    env.run(until=400_000)
    starts = [t for t, _, e in log.events if e == "start"]
    skips = [t for t, _, e in log.events if e == "skip"]
    assert starts == [0, 180, 360]
    assert skips == [60, 120, 240, 300]


def test_worker_slots_queue_runs_until_one_is_free():
    env, runtime, scheduler, log = make(workers=1)

    def task(seconds):
        async def body():
            await runtime.sleep(seconds)
        return body

    scheduler.add("a", task(10))
    scheduler.add("b", task(5))
    scheduler.trigger("a")
    scheduler.trigger("b")
    env.run()
    assert [(t, n, e) for t, n, e in log.events] == [
        (0, "a", "start"), (10, "a", "end"), (10, "b", "start"), (15, "b", "end")]
