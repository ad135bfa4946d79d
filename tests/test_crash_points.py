"""Crashes at random points lose no deal and store none twice (issue 14, item 2).

Each case crashes the collector at random instants (``restart_random``: exponential
intervals from the run's own ``<seed>/restarts`` stream, to the millisecond, so they
fall mid-call, mid-chunk, between a chunk's calls and its commit, in the janitor's
run...), some with deploys too. Wrappers on `Process.commit` (every storage commit
goes through it) and `MemoryStorage.expire` (the janitor's deletions) check at each
commit that

* no deal is stored twice: a committed ASIN is not stored already (unless the
  janitor deleted it meanwhile, then it is new again). The one exception is modelled:
  with ``processes`` above 1 each process keeps its own claims (the seed's prefork
  memory, ``collector.processes``), so a backfill in one process and a recent run in
  another can both fetch a new deal and both store it; the test allows a second
  store only from a process other than the one that stored it;
* the backfill cursor and the recent watermark never move backward: what is stored
  after each commit is at or beyond what was stored before it. Runs whose task locks
  expire under them (``lock_ttl_s``, several processes) overlap, and the run that
  started from an older cursor, or read an older list, then asks to commit progress
  behind the stored one (`Process.commit` keeps the furthest); the overlap case
  asserts that this happened, so the guard is exercised. The seed presets write the
  cursor back as the seed's code did (``cursor_ratchet`` off), and the test allows
  that there alone;

and at the end that no deal was lost: the stored deals are exactly those committed
and not deleted since, so every deal committed before a crash is still there. The
same checks run on the live collector's SQLite storage (on the simulated clock), so
both backends of `collector.storage.Storage` keep them.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.live.sqlite import SQLiteStorage
from collector.processes import Process
from collector.storage import Cursor, MemoryStorage
from sim.engine import simulate
from sim.restarts import Lives
from sim.settings import build


class Ledger:
    """Every commit and deletion of one run, checked as they come."""

    def __init__(self):
        self.expected: set[str] = set()  # committed and not deleted since
        self.commits = self.stored = self.deleted = self.twice = 0
        self.stored_by: dict[str, Process] = {}  # the process that last stored each ASIN
        self.at_crash: list[tuple[float, set[str]]] = []  # (time, stored) at each crash
        self.out_at_crash = 0  # calls the crashes caught in flight
        self.lost_later: set[str] = set()  # deleted by the janitor after some crash
        self.held = {"cursor": 0, "watermark": 0}  # progress asked for behind the stored

    def before(self, process: Process, deals, cursor: Cursor | None,
               watermark: int | None) -> tuple[Cursor, int | None]:
        """Check a commit about to be made; the progress stored before it."""
        storage = process.storage
        asins = [d.asin for d in deals]
        assert len(set(asins)) == len(asins), "a commit carries an ASIN twice"
        for asin in storage.known(asins):
            # only another process, whose claims this one cannot see, stores it again
            assert process.config.processes > 1 and self.stored_by[asin] is not process, \
                f"{asin} stored twice"
            self.twice += 1
        self.stored_by.update(dict.fromkeys(asins, process))
        self.expected.update(asins)
        self.commits += 1
        self.stored += len(asins)
        was = storage.cursor(), storage.watermark()
        self.held["cursor"] += cursor is not None and cursor < was[0]
        self.held["watermark"] += None not in (watermark, was[1]) and watermark < was[1]
        return was

    def after(self, process: Process, was: tuple[Cursor, int | None]) -> None:
        """The progress stored after a commit is at or beyond what it was before. The one
        exception is modelled: with ``cursor_ratchet`` off (the seed's code), the last
        commit's cursor stands."""
        cursor, watermark = process.storage.cursor(), process.storage.watermark()
        if process.config.cursor_ratchet:
            assert cursor >= was[0], f"the cursor moved back: {was[0]} -> {cursor}"
        if was[1] is not None:
            assert watermark is not None and watermark >= was[1], \
                f"the watermark moved back: {was[1]} -> {watermark}"

    def expired(self, gone: list[str]) -> None:
        self.expected.difference_update(gone)
        self.lost_later.update(gone)
        self.deleted += len(gone)


def asins_in(storage) -> set[str]:
    """The ASINs `storage` holds, in memory or in SQLite."""
    return set(storage.deals() if isinstance(storage, SQLiteStorage) else storage.deals)


@pytest.fixture
def new_ledger(monkeypatch):
    """Install the wrappers; each call starts a fresh `Ledger` for the next run."""
    holder = {}
    commit, crash = Process.commit, Lives.crash

    def checked_commit(self, task, deals, *, cursor=None, watermark=None):
        was = holder["book"].before(self, deals, cursor, watermark)
        commit(self, task, deals, cursor=cursor, watermark=watermark)
        holder["book"].after(self, was)

    def logged(expire):
        def logged_expire(self, now, ttl_s):
            gone = expire(self, now, ttl_s)
            holder["book"].expired(gone)
            return gone
        return logged_expire

    def logged_crash(self, kind):
        book = holder["book"]
        book.at_crash.append((self.env.now / 1000, asins_in(self.storage)))
        book.out_at_crash += len(getattr(self.collector.runtime, "calls", ()))
        crash(self, kind)

    monkeypatch.setattr(Process, "commit", checked_commit)
    for backend in (MemoryStorage, SQLiteStorage):
        monkeypatch.setattr(backend, "expire", logged(backend.expire))
    monkeypatch.setattr(Lives, "crash", logged_crash)

    def start() -> Ledger:
        holder["book"] = Ledger()
        return holder["book"]

    return start


def _run_and_check(ledger: Ledger, case, storage=None):
    """Run `case` crashing (on `storage`, default in memory); at the end, the stored
    deals are exactly those committed and not deleted since, and each crash's stored
    deals are among them."""
    preset, refill, sets, hours, seed = case
    result = simulate(*build(preset, None, list(sets), refill, hours, seed), storage)
    stored_now = asins_in(result.collector.storage)
    assert stored_now == ledger.expected  # none lost, none from nowhere
    for at, stored in ledger.at_crash:
        assert stored <= stored_now | ledger.lost_later, f"lost at {at:.3f} s"
    assert len(result.restarts) == len(ledger.at_crash)
    return result


RANDOM = ("restart_random=true",)
CASES = [  # (preset, refill, --set, hours, seed)
    ("seed-after", 5, ("restart_every_s=2400", *RANDOM), 12, 1),
    ("fixed", 20, ("restart_every_s=1800", "deploy_every_s=7200", *RANDOM), 6, 2),
    ("fixed", 20, ("restart_every_s=1800", "checkpoint=page", *RANDOM), 6, 3),
    ("adaptive", 250, ("restart_every_s=600", "max_in_flight=16", *RANDOM), 1.5, 4),
    ("seed-after", 60, ("restart_every_s=1200", "processes=3", "janitor_ttl_s=1800",
                        "janitor_period_s=600", *RANDOM), 4, 5),
    ("fixed", 250, ("restart_every_s=300", "max_in_flight=8", *RANDOM), 1, 7),
    ("java-client", 60, ("restart_every_s=900", "server.drop=0.05",
                         "server.errors=500:0.02", *RANDOM), 2, 6),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[4]}")
def test_random_crashes_lose_no_deal_and_store_none_twice(new_ledger, case):
    """Seven seeded schedules; measured: 80 crashes in all, 43 calls caught in flight
    (29 of them by the fixed-250 case), 3,597 deals stored, 333 deleted by the janitor."""
    ledger = new_ledger()
    _run_and_check(ledger, case)
    assert len(ledger.at_crash) >= 5 and ledger.stored > 0
    if case[:2] == ("fixed", 250):  # the case that catches calls in flight
        assert ledger.out_at_crash >= 5


OVERLAP = ("fixed", 20, ("processes=4", "lock_ttl_s=60", "recent_period_s=300",
                         "restart_every_s=3600", *RANDOM), 12, 9)
"""Four processes whose task locks expire a minute after they are taken (the seed's
TTLs were shorter than its runs, seed-system.md §1.8): backfills overlap, and so do
recent runs."""


def test_overlapping_runs_ask_to_move_progress_back_and_it_stays(new_ledger):
    """Measured: 13 crashes; 37 cursor commits and 2 watermark commits asked for progress
    behind the stored one, and none moved it back; 441 deals stored, 141 of them a
    second time by another process (claims are per process, as modelled)."""
    ledger = new_ledger()
    _run_and_check(ledger, OVERLAP)
    assert len(ledger.at_crash) >= 5
    assert ledger.held["cursor"] >= 10 and ledger.held["watermark"] >= 1


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[5], OVERLAP],
                         ids=lambda c: f"{c[0]}-{c[1]}-{c[4]}")
def test_on_sqlite_the_same_checks_hold_and_the_run_is_the_same(new_ledger, tmp_path, case):
    """The live collector's storage, on the simulated clock, under the same crashes: the
    checks hold, the run's summary is the in-memory run's, and the database's own count
    of stores per deal shows no second store but those the ledger allowed."""
    in_memory = _run_and_check(new_ledger(), case).summary
    ledger = new_ledger()
    path = tmp_path / "deals.sqlite"
    result = _run_and_check(ledger, case, lambda clock: SQLiteStorage(path, clock=clock))
    assert {**result.summary, "wall_s": 0} == {**in_memory, "wall_s": 0}
    times = result.collector.storage.deals().values()
    assert sum(n - 1 for _, n in times) <= ledger.twice
    assert len(ledger.at_crash) >= 5 and ledger.stored > 0


@st.composite
def crashing_runs(draw):
    """A short run crashed at random: (preset, refill, --set, hours, seed)."""
    preset = draw(st.sampled_from(["seed-after", "fixed", "adaptive", "java-client"]))
    refill = draw(st.sampled_from([5, 20, 60, 250]))
    sets = [f"restart_every_s={draw(st.sampled_from([300, 900, 1800]))}", *RANDOM,
            f"max_in_flight={draw(st.integers(1, 8))}",
            f"checkpoint={draw(st.sampled_from(['chunk', 'page']))}"]
    if draw(st.booleans()):
        sets.append(f"processes={draw(st.integers(2, 4))}")
        if draw(st.booleans()):  # locks that expire under their runs: runs overlap
            sets.append("lock_ttl_s=60")
    if draw(st.booleans()):
        sets += ["janitor_ttl_s=1800", "janitor_period_s=600"]
    if draw(st.booleans()):
        sets.append("deploy_every_s=3600")
    return preset, refill, tuple(sets), 2.0, draw(st.integers(0, 10_000))


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=crashing_runs())
def test_drawn_crash_schedules_lose_no_deal_and_store_none_twice(new_ledger, case):
    """The same checks on drawn configs, some with locks that expire under their runs.
    (No figures here: derandomized, Hypothesis seeds its draws from this test's source,
    so an edit draws other examples.)"""
    _run_and_check(new_ledger(), case)
