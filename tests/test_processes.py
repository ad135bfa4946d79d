"""Several collector processes on one key, their beliefs, and task locks with a TTL
(issue 13, item 1; seed-system.md §1.2, §1.4, §1.8, §2.1)."""

from __future__ import annotations

import simpy

from collector.app import Collector
from collector.belief import SharedBelief, SharedTokenManager
from collector.config import Config
from collector.events import Observer
from collector.processes import AnyRecharging
from collector.scheduler import Scheduler
from collector.storage import MemoryStorage
from collector.tokens import RECHARGING, SPENDING, TokenManager
from sim.engine import simulate
from sim.runtime import SimRuntime
from sim.settings import build

SEEDS = (0, 1, 2)


class Log(Observer):
    def __init__(self):
        self.events = []
        self.modes = []

    def on_task(self, t, task, event, detail=""):
        self.events.append((t, task, event))

    def on_mode(self, t, mode):
        self.modes.append((t, mode))


def envelope(left: float) -> dict:
    return {"tokensLeft": left, "refillRate": 5, "refillIn": 30_000}


def run(preset: str, seed: int, *sets: str, hours: float = 24):
    config, scenario = build(preset, None, list(sets), 5.0, hours, seed)
    return simulate(config, scenario)


# -- processes -------------------------------------------------------------------------
def test_one_process_is_the_collector_itself_with_a_belief_of_its_own():
    runtime = SimRuntime(simpy.Environment(), server=None, start_ms=0, seed=0)
    collector = Collector(runtime, Config(), MemoryStorage())
    assert collector.processes == [collector] and collector.pool is None
    assert type(collector.tokens) is TokenManager
    assert collector.scheduler.workers == Config().workers


def test_processes_are_the_worker_slots_each_with_its_own_client_and_memory():
    runtime = SimRuntime(simpy.Environment(), server=None, start_ms=0, seed=0)
    collector = Collector(runtime, Config(processes=3, workers=8), MemoryStorage())
    first, second, third = collector.processes
    assert first is collector and collector.scheduler.workers == 3
    assert len({id(p.client) for p in collector.processes}) == 3
    assert len({id(p.client.slots) for p in collector.processes}) == 3
    assert first.claim(["A", "B"]) == ["A", "B"]
    assert second.claim(["A", "B"]) == ["A", "B"]  # claims live in a process's memory
    assert second.recent_pending is not third.recent_pending
    assert first.storage is second.storage and first.scheduler is third.scheduler


def test_runs_spread_over_the_processes():
    result = run("seed-after", 0, "processes=4", hours=6)
    spacing = [p.tokens.last_call for p in result.collector.processes]
    assert sum(bool(calls) for calls in spacing) >= 3  # recent runs go to idle processes


# -- beliefs ---------------------------------------------------------------------------
def test_shared_belief_reservations_add_up_and_the_last_reading_wins():
    config, log = Config(), Log()
    shared = SharedBelief.initial(config, 0.0)
    a, b = (SharedTokenManager(shared, config, log, 0.0) for _ in range(2))
    a.observe(envelope(100), 1.0)
    ticket = a.reserve("backfill", 30, 2.0)
    assert b.estimate(2.0) == 70  # B sees what A reserved (INCRBYFLOAT)
    answered = b.reserve("recent", 10, 3.0)
    assert a.estimate(3.0) == 60
    b.observe(envelope(90), 4.0, answered)  # B's answer: a SET of tokensLeft
    assert a.estimate(4.0) == 90  # A's 30 still out, but overwritten: the last writer wins
    assert a.last_call == {"backfill": 2.0} and b.last_call == {"recent": 3.0}
    a.set_mode(RECHARGING, 5.0)
    assert b.mode == RECHARGING and b.recharge_since == 5.0  # one recharge flag
    b.set_mode(RECHARGING, 6.0)
    assert log.modes == [(5.0, RECHARGING)]
    a.observe(envelope(80), 7.0, ticket)
    later = SharedTokenManager(shared, config, log, 8.0)
    assert later.estimate(8.0) == 80 and later.mode == RECHARGING  # finds the keys as set


def test_private_beliefs_recharge_as_a_deployment_while_any_process_does():
    config, log = Config(), Log()
    tally = AnyRecharging(log)
    a, b = (TokenManager(config, tally, 0.0) for _ in range(2))
    a.set_mode(RECHARGING, 1.0)
    b.set_mode(RECHARGING, 2.0)
    a.set_mode(SPENDING, 3.0)
    assert log.modes == [(1.0, RECHARGING)]
    b.set_mode(SPENDING, 4.0)
    assert log.modes == [(1.0, RECHARGING), (4.0, SPENDING)]
    a.reserve("backfill", 30, 5.0)
    assert b.estimate(5.0) - a.estimate(5.0) == 30  # B knows nothing of A's spending


def beliefs_at_four(preset: str, *sets: str) -> dict[str, list[dict]]:
    """Four processes in the seed's deployment (lock TTL 30 min, so four backfills run
    at once), the belief shared or private, on each seed."""
    return {shared: [run(preset, seed, "processes=4", "lock_ttl_s=1800",
                         f"shared_belief={shared}", *sets).summary for seed in SEEDS]
            for shared in ("true", "false")}


def test_private_projected_beliefs_dig_deeper_and_meet_more_429s_than_a_shared_one():
    """Each private belief projects the refill as if no other process spent it."""
    runs = beliefs_at_four("seed-after", "belief=projected")
    for shared, private in zip(runs["true"], runs["false"]):
        assert private["min_balance"] < shared["min_balance"]  # measured -73 against -55
        assert private["http_429"] > shared["http_429"]  # 12 to 20 against 0


def test_private_last_readings_meet_more_429s_than_a_shared_one():
    """The seed's own belief (the last tokensLeft, no projection): the processes that
    did not see the others spend meet their 429s."""
    runs = beliefs_at_four("seed-after")
    assert (sum(s["http_429"] for s in runs["false"])
            > 2 * sum(s["http_429"] for s in runs["true"]))


# -- task locks with a TTL -------------------------------------------------------------
def schedule(lock_ttl_s):
    env, log = simpy.Environment(), Log()
    runtime = SimRuntime(env, server=None, start_ms=0, seed=0)
    scheduler = Scheduler(runtime, 4, observer=log, lock_ttl_s=lock_ttl_s)
    most = [0]

    async def slow():
        most[0] = max(most[0], scheduler.running["slow"])
        await runtime.sleep(150)

    scheduler.add("slow", slow, period_s=60)
    scheduler.start()
    env.run(until=400_000)
    return log.events, most[0]


def test_a_lock_that_expires_under_a_run_lets_a_second_instance_start():
    events, most = schedule(lock_ttl_s=100)
    starts = [t for t, _, e in events if e == "start"]
    assert starts == [0, 120, 240, 360]
    assert [t for t, _, e in events if e == "overlap"] == [120, 240, 360]
    # the run ending at 150 leaves the lock run 2 took at 120 alone: 180 still skips
    assert [t for t, _, e in events if e == "skip"] == [60, 180, 300]
    assert most == 2


def test_without_a_ttl_the_lock_is_held_until_the_run_ends():
    events, most = schedule(lock_ttl_s=None)
    assert [t for t, _, e in events if e == "start"] == [0, 180, 360]
    assert not [e for _, _, e in events if e == "overlap"] and most == 1


def test_backfills_overlap_in_the_seed_deployment_only_with_the_ttl():
    with_ttl = run("seed-after", 0, "processes=4", "lock_ttl_s=1800", hours=6)
    without = run("seed-after", 0, "processes=4", hours=6)
    book = with_ttl.recorder.tasks["backfill"]
    assert book.events["start"] == 4 and book.events["overlap"] == 3  # 4 processes, all busy
    assert without.recorder.tasks["backfill"].events["overlap"] == 0
    assert without.summary["tasks"]["backfill"]["runs"] == 1
