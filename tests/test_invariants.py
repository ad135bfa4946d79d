"""Token accounting under random configs, seeds and faults (issue 14, item 1).

Hypothesis draws a preset, a plan (5 to 4000 tokens/min), ``max_in_flight``, server
faults (5xx pages, dropped connections, noise and spikes on ``refillRate``), the
bucket's mode (lumps, continuous, 60-minute expiry), 1 to 4 processes with a shared
belief or not, and crashes; one short run each (measured over the 100 examples:
about 123,000 server completions, 25,000 of them 429s, 119,000 data calls and
112,000 readings checked). Wrappers
installed for the run check, at every step, that

* the server's books balance (``initial + credited - charged == balance``, the rule
  of ``sim.keepa.bucket``) and a 429 charges nothing;
* every call the collector sends was let go by its policy at that instant, for that
  cost, and reserved: no data call leaves without ``decide`` returning None just
  before, and the rules the policy stands for hold at that moment (the spacing; the
  seed's threshold and ``max_deficit``; the adaptive policy's positive estimate);
* after each answer the belief is what the server reported: the projected belief
  (``belief = "projected"``) is ``tokensLeft`` minus what the process's other calls
  still out reserved, and the server's ``tokensLeft`` is its balance then (to the
3 decimals the envelope carries). With
  ``belief = "last-reading"`` the same holds when ``tokensLeft`` is not 0; a reading
  of 0 leaves the belief as it was (V7 skipped it). With a shared belief, the one
  that answered writes ``tokensLeft`` minus *its own* calls out: the reservations of
  the other processes are wiped (the last writer wins), so the shared balance can
  stand above the server's minus all reservations out (counted below).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.belief import SharedTokenManager
from collector.policies import POLICIES, AdaptivePolicy, SeedPolicy
from collector.tokens import SPENDING, TokenManager
from sim.engine import simulate
from sim.keepa import MockKeepa
from sim.restarts import LifeRuntime, Lives
from sim.runtime import SimRuntime
from sim.settings import build

PRESETS = ("fixed", "seed-after", "seed-before", "adaptive", "keepa-client", "java-client")


class Checks:
    """The wrappers' findings for one run."""

    def __init__(self):
        self.server: MockKeepa | None = None
        self.decided: dict[int, tuple] = {}  # id(tokens) -> (task, cost, now, let go)
        self.granted: float | None = None  # the time of the reservation not yet sent
        self.managers: dict[int, TokenManager] = {}  # the running life's, that reserved
        self.counts = {"finished": 0, "refused": 0, "sent": 0, "readings": 0,
                       "zero_readings": 0, "wiped_others": 0}

    # -- server ---------------------------------------------------------------------
    def finished(self, server: MockKeepa, pending, charged_before: float) -> None:
        self.server = server
        bucket = server.bucket
        self.counts["finished"] += 1
        if pending.status == 429:
            self.counts["refused"] += 1
            assert bucket.charged == charged_before, "a 429 was charged"
        assert bucket.initial + bucket.credited - bucket.charged == pytest.approx(
            bucket.balance, abs=1e-6), "the server's books do not balance"

    # -- the client's permission -----------------------------------------------------
    def decide(self, tokens: TokenManager, task: str, cost: float, now: float, wait) -> None:
        self.decided[id(tokens)] = (task, cost, now, wait is None)

    def reserve(self, tokens: TokenManager, task: str, cost: float, now: float) -> None:
        assert self.decided.pop(id(tokens), None) == (task, cost, now, True), \
            "a call reserved without its policy's leave"
        config = tokens.config
        last = tokens.last_call.get(task)
        assert last is None or now >= last + config.min_interval_s - 1e-9, "spacing broken"
        estimate = tokens.estimate(now)
        policy = POLICIES[config.policy]
        if policy is SeedPolicy and config.recharge:
            recharges = config.recharge_below_rate is None or \
                tokens.rate < config.recharge_below_rate
            if recharges and config.low_cost_release is None:
                assert tokens.mode == SPENDING
                assert estimate >= config.min_token_threshold, "sent below the threshold"
            if config.max_deficit is not None:
                assert estimate - cost >= config.max_deficit - 1e-9, "sent past max_deficit"
        if policy is AdaptivePolicy:
            assert estimate > 0, "the adaptive policy sent on an empty estimate"
        self.granted = now
        self.managers[id(tokens)] = tokens

    def send(self, runtime: SimRuntime, path: str) -> None:
        if path == "token":
            return
        assert self.granted == runtime.now(), "a data call sent without a reservation"
        self.granted = None
        self.counts["sent"] += 1

    # -- the belief after an answer ----------------------------------------------------
    def observed(self, tokens: TokenManager, envelope, now: float, ticket, before: float,
                 adopted: bool) -> None:
        if not adopted or ticket is None:
            return
        left = envelope["tokensLeft"]
        self.counts["readings"] += 1
        balance = self.server.bucket.balance
        assert left == pytest.approx(balance, abs=1e-3), "tokensLeft is not the balance"
        expected = left - tokens._outstanding
        if tokens.config.belief == "last-reading" and not left:
            self.counts["zero_readings"] += 1
            expected = before  # V7 skipped a reading of 0
        assert tokens.estimate(now) == pytest.approx(expected, abs=1e-6)
        if isinstance(tokens, SharedTokenManager) and any(
                m._outstanding for m in self.managers.values()
                if m is not tokens and getattr(m, "shared", None) is tokens.shared):
            self.counts["wiped_others"] += 1  # their reservations are gone from the belief


@pytest.fixture
def checks(monkeypatch):
    holder = {}

    def current() -> Checks:
        return holder["checks"]

    orig_finish = MockKeepa.finish

    def finish(self, pending, now_ms):
        before = self.bucket.charged
        out = orig_finish(self, pending, now_ms)
        current().finished(self, pending, before)
        return out

    monkeypatch.setattr(MockKeepa, "finish", finish)
    for cls in set(POLICIES.values()):
        def decide(self, tokens, task, cost, now, _orig=cls.decide):
            wait = _orig(self, tokens, task, cost, now)
            current().decide(tokens, task, cost, now, wait)
            return wait
        monkeypatch.setattr(cls, "decide", decide)
    reserve, observe = TokenManager.reserve, TokenManager.observe

    def checked_reserve(self, task, cost, now):
        current().reserve(self, task, cost, now)
        return reserve(self, task, cost, now)

    def checked_observe(self, envelope, now, ticket=None):
        before = self.estimate(now)
        adopted = observe(self, envelope, now, ticket)
        current().observed(self, envelope, now, ticket, before, adopted)
        return adopted

    monkeypatch.setattr(TokenManager, "reserve", checked_reserve)
    monkeypatch.setattr(TokenManager, "observe", checked_observe)
    crash = Lives.crash

    def logged_crash(self, kind):
        crash(self, kind)
        current().managers.clear()  # the dead life's calls out are no one's now

    monkeypatch.setattr(Lives, "crash", logged_crash)
    for cls in (SimRuntime, LifeRuntime):
        def send(self, request, _orig=cls.send):
            current().send(self, request.path)
            return _orig(self, request)
        monkeypatch.setattr(cls, "send", send)

    def start() -> Checks:
        holder["checks"] = Checks()
        return holder["checks"]

    return start


def _faults(draw) -> list[str]:
    sets = []
    if draw(st.booleans()):
        sets.append(f"server.errors=500:{draw(st.sampled_from([0.01, 0.05]))},"
                    f"503:{draw(st.sampled_from([0.01, 0.05]))}")
    if draw(st.booleans()):
        sets.append(f"server.drop={draw(st.sampled_from([0.01, 0.05, 0.2]))}")
    if draw(st.booleans()):
        sets.append(f"server.rate_noise={draw(st.sampled_from([1, 3]))}")
    if draw(st.booleans()):
        sets.append(f"server.rate_spike_share={draw(st.sampled_from([0.05, 0.3]))}")
    bucket = draw(st.sampled_from(["", "server.continuous=true", "server.expiry=true"]))
    return sets + [bucket] if bucket else sets


@st.composite
def runs(draw):
    """(preset, refill, --set assignments, seed) of one short run."""
    preset = draw(st.sampled_from(PRESETS))
    refill = draw(st.sampled_from([5, 7, 20, 60, 250, 1000, 4000]))
    sets = [f"max_in_flight={draw(st.integers(1, 16))}", *_faults(draw)]
    processes = draw(st.integers(1, 4))
    if processes > 1:
        sets += [f"processes={processes}", f"shared_belief={draw(st.booleans())}"]
    if draw(st.booleans()):
        sets += [f"restart_every_s={draw(st.sampled_from([300, 900, 1800]))}",
                 f"restart_random={draw(st.booleans())}"]
    return preset, refill, sets, draw(st.integers(0, 10_000))


def _hours(refill: float) -> float:
    """Short runs, shorter on big plans (more calls a minute)."""
    return 1.5 if refill <= 60 else 0.5


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=runs())
def test_token_accounting_holds_under_random_configs_and_faults(checks, case):
    preset, refill, sets, seed = case
    seen = checks()
    config, scenario = build(preset, None, sets, refill, _hours(refill), seed)
    result = simulate(config, scenario)
    bucket = result.server.bucket
    assert bucket.initial + bucket.credited - bucket.charged == pytest.approx(bucket.balance)
    assert seen.counts["sent"] > 0 and seen.counts["readings"] > 0
    reported = sum(c.path != "token" for c in result.recorder.calls)
    unread = result.summary.get("unread_calls", 0)  # /token calls among them too
    out_at_end = config.max_in_flight * config.processes
    assert reported <= seen.counts["sent"] <= reported + unread + out_at_end


def test_a_shared_belief_loses_the_other_processes_reservations(checks):
    """Four processes on one belief at 60 tokens/min, 4 calls out each: answers often
    land while another process has calls out, and the shared balance then forgets them."""
    seen = checks()
    config, scenario = build("fixed", None, ["processes=4", "max_in_flight=4"], 60, 2.0, 3)
    simulate(config, scenario)
    assert seen.counts["wiped_others"] > 0.05 * seen.counts["readings"]  # measured: 134 of 899
