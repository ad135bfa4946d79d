"""The peers (issue 12): each preset reproduces the behaviour that defines the collector
it copies, on the simulated server (Done-when 3).

The harness runs the collector against a mock that books every request: when it
went out, when it was answered, its status and envelope, keyed by the request
itself, so a retry is the next request with the same key.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
import simpy

from collector.app import Collector
from collector.backfill import backfill
from collector.client import KeepaClient
from collector.config import Config, ConfigError
from collector.presets import PEERS, PRESETS
from collector.events import Observer
from collector.policies import SeedPolicy
from collector.storage import MemoryStorage
from collector.tokens import RECHARGING, SPENDING, TokenManager
from sim.keepa import DealMarket, MarketSettings, MockKeepa, ServerSettings
from sim.runtime import SimRuntime

START = 1_770_508_800_000
OLD = ("seed-before", "seed-after", "fixed", "reactive")


class Wire(MockKeepa):
    """The mock, booking each request: ``sent`` (ms, key) and ``answered`` (ms, key,
    status, body), both in order."""

    def __init__(self, *args):
        super().__init__(*args)
        self.sent: list[tuple[int, str]] = []
        self.answered: list[tuple[int, str, int, dict]] = []
        self.keys: dict[int, str] = {}
        self.out = self.most_out = 0

    def begin(self, path, params, now_ms, body=None):
        pending = super().begin(path, params, now_ms, body)
        key = path + "?" + "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        self.keys[id(pending)] = key
        self.sent.append((now_ms, key))
        self.out += 1
        self.most_out = max(self.most_out, self.out)
        return pending

    def finish(self, pending, now_ms):
        status, body = super().finish(pending, now_ms)
        self.out -= 1
        self.answered.append((now_ms, self.keys.pop(id(pending)), status,
                              body if isinstance(body, dict) else {}))
        return status, body

    def retries(self, status: int) -> list[tuple[int, dict, int | None]]:
        """(answer ms, body, ms of the next request with the same key or None) for every
        answer with `status`."""
        out = []
        for t, key, got, body in self.answered:
            if got == status:
                later = [ms for ms, k in self.sent if k == key and ms > t]
                out.append((t, body, later[0] if later else None))
        return out


class Tasks(Observer):
    """Task events, calls and commits as the collector reports them."""

    def __init__(self):
        self.events: list[tuple[float, str, str, str]] = []
        self.commits: dict[str, list[float]] = defaultdict(list)
        self.stored = 0

    def on_task(self, t, task, event, detail=""):
        self.events.append((t, task, event, detail))

    def on_commit(self, t, task):
        self.commits[task].append(t)

    def on_stored(self, t, task, asins):
        self.stored += len(asins)


def run(preset: str, refill: float, hours: float, *, only_backfill: bool = False,
        seed: int = 3, settings: dict | None = None, overrides=()):
    """Run `preset` against a booking mock for `hours`; (collector, server, observer,
    reservations as (task, s))."""
    server = Wire(ServerSettings(rate=refill, **(settings or {})),
                  DealMarket(MarketSettings(), seed, START), seed, START)
    env = simpy.Environment()
    runtime = SimRuntime(env, server, START, seed)
    observer = Tasks()
    config = Config.load(preset, overrides=[f"refill_rate={refill}", *overrides])
    collector = Collector(runtime, config, MemoryStorage(), observer)
    reserved: list[tuple[str, float]] = []
    reserve = collector.tokens.reserve

    def booked(task, cost, now):
        reserved.append((task, now))
        return reserve(task, cost, now)

    collector.tokens.reserve = booked
    if only_backfill:
        runtime.spawn(backfill(collector))
    else:
        collector.start()
    env.run(until=round(hours * 3_600_000))
    return collector, server, observer, reserved


def test_the_old_presets_keep_every_new_knob_neutral():
    neutral = Config()
    for name in OLD:
        config = PRESETS[name]
        for key in ("wait_429", "low_cost_release", "scan_batch_size", "commit_batch_size",
                    "max_retries", "backoff"):
            assert getattr(config, key) == getattr(neutral, key), (name, key)


def test_every_peer_round_trips_through_toml(tmp_path):
    for name in PEERS:
        path = tmp_path / f"{name}.toml"
        path.write_text(PRESETS[name].to_toml(name))
        assert Config.load(file=path) == PRESETS[name]


@pytest.mark.parametrize("bad", ["wait_429=soon", "scan_batch_size=1<10,150",
                                 "scan_batch_size=2.5", "commit_batch_size=0",
                                 "low_cost_max=-1", "backoff=linear", "max_retries=-1"])
def test_the_new_knobs_reject_bad_values_in_one_line(bad):
    with pytest.raises(ConfigError) as error:
        Config.load("fixed", overrides=[bad])
    assert "\n" not in str(error.value) and bad.split("=")[0] in str(error.value)


# -- seed-before -------------------------------------------------------------------


def test_seed_before_never_calls_one_task_faster_than_once_a_minute():
    gaps = {}
    for preset in ("seed-before", "seed-after"):
        _, server, _, reserved = run(preset, 5, 12)
        times = defaultdict(list)
        for task, t in reserved:
            times[task].append(t)
        gaps[preset] = min(b - a for ts in times.values() for a, b in zip(ts, ts[1:]))
        assert server.http_429 == 0
    assert gaps["seed-before"] >= 60.0
    assert gaps["seed-after"] < 60.0  # the rule is the preset's, not the harness's


# -- keepa-client --------------------------------------------------------------------


def test_keepa_client_sends_blind_meets_429s_and_waits_its_time_to_refill():
    collector, server, observer, _ = run("keepa-client", 5, 6, only_backfill=True)
    retries = server.retries(429)
    assert len(retries) > 20
    assert not [key for _, key in server.sent if key.startswith("token")]  # no pre-check
    rate = 5.0
    for t, body, again in retries:
        if again is None:  # still waiting when the run ended
            continue
        # time_to_refill: timestamp + refillIn - now + 1 s, plus the deficit at the rate
        wait_ms = body["refillIn"] + 1000 + max(0, -body["tokensLeft"]) / rate * 60_000
        assert abs((again - t) - wait_ms) <= 1
    waited = [r for r in retries if r[1]["tokensLeft"] < 0]
    assert waited, "some 429 found a deficit to wait out"
    assert all(again is not None for t, _, again in retries[:-1])  # retried, for ever
    assert observer.stored > 0


def test_keepa_client_recovers_from_429s_over_a_day(sim_json):
    out = sim_json("--preset", "keepa-client", "--refill", "5", "--hours", "24")
    assert out["http_429"] > 500
    assert out["token_calls"] == 0
    assert out["tasks"]["backfill"]["errors"] == out["tasks"]["recent"]["errors"] == 0
    assert out["token_utilization"] > 0.99  # the 429s cost it nothing but time
    assert out["deals_per_hour"] > 10


def test_keepa_client_gives_up_on_a_server_error_and_java_client_never_does():
    faults = {"errors": "503:0.3"}
    _, _, keepa, _ = run("keepa-client", 600, 0.5, settings=faults)
    _, _, java, _ = run("java-client", 600, 0.5, settings=faults)
    assert [e for e in keepa.events if e[2] == "error"]
    assert not [e for e in java.events if e[2] == "error"]


# -- java-client ----------------------------------------------------------------------


def test_java_client_waits_refill_in_plus_100_ms_after_a_429_with_four_calls_out():
    collector, server, _, _ = run("java-client", 5, 3, only_backfill=True)
    assert collector.config.max_in_flight == 4 and server.most_out == 4
    retries = [(t, body, again) for t, body, again in server.retries(429) if again is not None]
    assert len(retries) > 50
    for t, body, again in retries:
        assert again - t in (body["refillIn"] + 100, body["refillIn"] + 101)  # ms rounding
    # whatever the deficit: a deep one meets a 429 again at the next refill
    assert any(body["tokensLeft"] < -5 for _, body, _ in retries)


def test_java_client_backs_off_0_1_0_3_0_7_s_after_failures_in_a_row():
    _, server, _, _ = run("java-client", 600, 1, only_backfill=True,
                          settings={"errors": "503:0.5"})
    streak: dict[str, int] = defaultdict(int)
    seen = defaultdict(set)
    for t, key, status, _ in server.answered:
        if status == 200:
            streak[key] = 0
            continue
        streak[key] += 1
        again = next(ms for ms, k in server.sent if k == key and ms > t)
        seen[streak[key]].add(again - t)
    for n, ms in ((1, 100), (2, 300), (3, 700)):
        assert seen[n] and seen[n] <= {ms, ms + 1}  # + the clock's rounding up


def test_the_cumulative_backoff_is_capped():
    config = Config.load("java-client")
    runtime = SimRuntime(simpy.Environment(), None, START, 0)
    client = KeepaClient(runtime, config)
    assert [client._backoff(n) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.3, 0.7, 1.5])
    assert client._backoff(10) == 60.0 and client._backoff(10_000) == 60.0


# -- seed-head -----------------------------------------------------------------------


def head_tokens(balance: float, rate: float = 5.0, now: float = 100.0) -> TokenManager:
    tokens = TokenManager(PRESETS["seed-head"], now=now)
    tokens.observe({"tokensLeft": balance, "refillRate": rate, "refillIn": 30_000}, now)
    return tokens


def test_seed_head_thresholds():
    config, policy = PRESETS["seed-head"], SeedPolicy()
    assert config.burst_target(5) == config.burst_target(19) == 40
    assert config.burst_target(20) == config.burst_target(4000) == 50
    assert policy.decide(head_tokens(1), "backfill", 10, 100) is None  # a minimum of 1
    tokens = head_tokens(0.5)
    assert policy.decide(tokens, "backfill", 10, 100).reason == "recharge"
    assert tokens.mode == RECHARGING
    assert policy.decide(head_tokens(10), "backfill", 190, 100) is None  # down to -180
    wait = policy.decide(head_tokens(10), "backfill", 191, 100)
    assert wait.reason == "deficit"


def test_seed_head_low_cost_release_at_20():
    policy = SeedPolicy()

    def recharging(balance):
        tokens = head_tokens(balance)
        tokens.set_mode(RECHARGING, 100)
        return tokens

    tokens = recharging(20)
    assert policy.decide(tokens, "backfill", 10, 100) is None and tokens.mode == SPENDING
    assert policy.decide(recharging(20), "backfill", 11, 100).reason == "recharge"
    assert policy.decide(recharging(19), "backfill", 10, 100).reason == "recharge"
    assert policy.decide(recharging(40), "backfill", 40, 100) is None  # the burst target


def test_seed_head_scans_by_refill_rate_and_commits_in_fives():
    config = PRESETS["seed-head"]
    assert [config.chunk_at(r) for r in (5, 9, 10, 19, 20, 29, 30, 4000)] == [
        1, 1, 20, 20, 15, 15, 50, 50]
    _, server, _, _ = run("seed-head", 25, 2)
    sizes = defaultdict(list)
    for _, key, status, _ in server.answered:
        if key.startswith("product?"):
            asins = key.split("asin=")[1].split("&")[0].split(",")
            sizes["full" if "history=1" in key else "peek"].append(len(asins))
    assert max(sizes["peek"]) == 15
    assert max(sizes["full"]) == 5 and min(sizes["full"]) >= 1


def test_seed_head_aborts_a_run_whose_wait_exceeds_60_s_and_the_next_run_resumes():
    collector, _, observer, _ = run("seed-head", 5, 12)
    aborts = [(t, detail) for t, task, event, detail in observer.events
              if task == "backfill" and event == "abort"]
    assert len(aborts) > 20
    for _, detail in aborts:
        waited = float(detail.split(" wait of ")[1].split(" s ")[0])
        assert waited > 60 and detail.endswith("exceeds 60 s")
    starts = [t for t, task, event, _ in observer.events
              if task == "backfill" and event == "start"]
    assert all(math.isclose(t % 300, 0, abs_tol=1e-6) for t in starts)  # every 5 minutes
    skips = [t for t, task, event, _ in observer.events if task == "backfill" and event == "skip"]
    assert len(starts) + len(skips) == 12 * 12
    # each run picks up from the cursor the aborted ones left: it moves across runs
    assert len(observer.commits["backfill"]) > 30
    cursor = collector.storage.cursor()
    assert cursor.page * 150 + cursor.index > 30
    # the same preset sleeping out its long waits never aborts
    _, _, sleeper, _ = run("seed-head", 5, 12, overrides=["on_long_wait=sleep"])
    assert not [e for e in sleeper.events if e[2] == "abort"]


# -- fixed-sleep ----------------------------------------------------------------------


def test_fixed_sleep_pauses_a_minute_between_chunks_whatever_the_plan():
    per_hour = {}
    for refill in (250, 1000):  # plans whose tokens a chunk a minute cannot spend
        _, server, observer, _ = run("fixed-sleep", refill, 2, only_backfill=True)
        commits = observer.commits["backfill"]
        gaps = [b - a for a, b in zip(commits, commits[1:])]
        assert min(gaps) >= 60.5  # the pause, plus the commit's own 0.5 s
        per_hour[refill] = len(commits) / 2
        assert server.http_429 == 0
    assert per_hour[250] == pytest.approx(per_hour[1000], rel=0.05)  # blind to the plan
    assert per_hour[1000] < 60
