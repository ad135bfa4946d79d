"""Restarts, deploys and the backfiller's checkpoint (issue 13, items 2 and 3;
seed-system.md §1.2, §1.4, §3 S21)."""

from __future__ import annotations

import random

import pytest

from collector.config import Config, ConfigError
from collector.tokens import RECHARGING, SPENDING
from sim.engine import START_MS, simulate
from sim.keepa import MockKeepa
from sim.restarts import DEPLOY, RESTART, Lives, _times
from sim.settings import build


def run(preset: str, *sets: str, refill: float = 5.0, hours: float = 24, seed: int = 0):
    config, scenario = build(preset, None, list(sets), refill, hours, seed)
    return simulate(config, scenario)


# -- checkpoints (S21) ------------------------------------------------------------------
def test_hourly_restarts_at_5_a_minute_stall_page_checkpoints_not_chunk_ones():
    """A page of 150 deals takes the backfiller about a day at 5 tokens/min; an hour's
    life sees a few chunks. With the cursor saved per chunk each life goes on where the
    last stopped; saved per page, each starts again at the page's first deal and pays
    again for the deals it examined and did not keep (their claims died with it)."""
    chunk = run("seed-after", "restart_every_s=3600", "checkpoint=chunk").summary
    page = run("seed-after", "restart_every_s=3600", "checkpoint=page").summary
    assert chunk["restarts"] == page["restarts"] == 23
    # measured: 136 deals stored against 12; both spent the day's tokens (7,481 and 7,473)
    assert page["deals_stored"] < 0.2 * chunk["deals_stored"]
    assert page["tokens_consumed"] > 0.95 * chunk["tokens_consumed"]
    assert page["deals_processed"] > chunk["deals_processed"]  # paid for again


def test_without_restarts_the_checkpoint_changes_nothing():
    chunk = run("seed-after", "checkpoint=chunk").summary
    page = run("seed-after", "checkpoint=page").summary
    for key in ("deals_stored", "deals_processed", "tokens_consumed", "api_calls"):
        assert page[key] == chunk[key]


def test_page_checkpoints_save_the_cursor_only_at_a_page_boundary():
    """Run long enough at 20 tokens/min to finish page 0: the stored cursor jumps from
    (0, 0) to (1, 0); a chunk checkpoint stands mid-page."""
    page = run("seed-after", "checkpoint=page", refill=20, hours=12).collector.storage
    chunk = run("seed-after", "checkpoint=chunk", refill=20, hours=12).collector.storage
    assert page.cursor().index == 0 and page.cursor().page >= 1
    assert chunk.cursor().index != 0 or chunk.cursor().page > page.cursor().page


# -- deploys --------------------------------------------------------------------------
def _spells(modes, mode):
    """(start, end) of each spell of `mode` in a recorder's mode changes."""
    return [(t, modes[i + 1][0]) for i, (t, m) in enumerate(modes[:-1]) if m == mode]


def test_a_deploy_forces_a_recharge_pause_a_restart_does_not():
    """`fixed` at 20 tokens/min bursts from its target (280) down to 20, then recharges.
    Crash it halfway down a burst. A deploy wipes the token state (the balance believed
    is 0, the rate and phase unknown) and sets the recharge flag: no data call goes
    until a reading shows the target again. A restart keeps spending."""
    plain = run("fixed", refill=20, hours=6)
    start, end = next(s for s in _spells(plain.recorder.modes, SPENDING) if s[0] > 3.1 * 3600)
    at = round((start + end) / 2, 3)
    deployed = run("fixed", f"deploy_every_s={at}", refill=20, hours=6)
    restarted = run("fixed", f"restart_every_s={at}", refill=20, hours=6)
    assert deployed.summary["deploys"] == deployed.summary["restarts"] == 1
    assert deployed.restarts == [(at, DEPLOY)] and restarted.restarts == [(at, RESTART)]
    assert restarted.summary["deploys"] == 0 and restarted.summary["restarts"] == 1
    paused, resumed = next(s for s in _spells(deployed.recorder.modes, RECHARGING)
                           if s[0] >= at)
    assert paused == at  # the flag is set at the deploy
    assert resumed - paused > 300  # measured: 7.1 minutes
    during = [c for c in deployed.recorder.calls if paused <= c.t < resumed]
    assert during and {c.path for c in during} == {"token"}
    # it ends as the projection of the last reading (275) reaches the target (280)
    assert during[-1].tokens_left >= deployed.collector.tokens.target() - 20
    # the restart at the same instant: data calls at once, no recharge until spent down
    assert not any(t == at and m == RECHARGING for t, m in restarted.recorder.modes)
    assert any(at <= c.t < at + 60 and c.path != "token" for c in restarted.recorder.calls)
    # the per-minute samples show the pause; the plain run was spending then
    minute = next(x for x in deployed.recorder.samples if x.t >= at)
    assert minute.mode == RECHARGING
    assert next(x for x in plain.recorder.samples if x.t >= start).mode == SPENDING


# -- crashes --------------------------------------------------------------------------
@pytest.fixture
def log(monkeypatch):
    """What the server was asked and did, and what storage held at each crash."""
    seen = {"begun": [], "finished": [], "crashes": []}
    begin, finish, crash = MockKeepa.begin, MockKeepa.finish, Lives.crash

    def logged_begin(self, path, params, now_ms, body=None):
        pending = begin(self, path, params, now_ms, body)
        seen["begun"].append((now_ms, path, params, pending))
        return pending

    def logged_finish(self, pending, now_ms):
        seen["finished"].append(pending)
        return finish(self, pending, now_ms)

    def logged_crash(self, kind):
        storage = self.collector.storage
        seen["crashes"].append((self.env.now, set(storage.deals), storage.cursor()))
        crash(self, kind)

    monkeypatch.setattr(MockKeepa, "begin", logged_begin)
    monkeypatch.setattr(MockKeepa, "finish", logged_finish)
    monkeypatch.setattr(Lives, "crash", logged_crash)
    return seen


def _peeks(begun):
    """(time ms since start, ASINs) of every backfill peek (``history=0``) sent."""
    return [(ms, tuple(p["asin"].split(","))) for ms, path, p, _ in begun
            if path == "product" and p.get("history") == "0"]


def test_a_crash_loses_the_uncommitted_chunk_and_no_committed_deal(log):
    """Crash seed-after at 5 h, mid-chunk (at 5 tokens/min a chunk waits for tokens
    between its calls). The chunk's deals were peeked and not stored; the next life
    resumes at the stored cursor and peeks them again (the list has moved a little
    meanwhile, so the chunks are not cut the same). Every deal stored before the
    crash is still stored, and none is fetched again."""
    result = run("seed-after", "restart_every_s=18000", hours=8)
    (at, stored, cursor), = log["crashes"]
    peeks = [(ms - START_MS, asins) for ms, asins in _peeks(log["begun"])]
    before = [asins for ms, asins in peeks if ms < at]
    after = [asins for ms, asins in peeks if ms >= at]
    in_progress = set(before[-1])  # the chunk the crash cut short: peeked, not committed
    assert in_progress and not in_progress & stored
    assert in_progress <= {asin for asins in after[:2] for asin in asins}  # paid for again
    final = result.collector.storage
    assert stored <= set(final.deals)  # every committed deal survived
    assert not {asin for asins in after for asin in asins} & stored  # none is fetched again
    assert final.cursor() != cursor and len(final.deals) > len(stored)


def test_calls_in_flight_at_a_crash_are_charged_unread_and_the_books_balance(log):
    """`fixed` at 250 tokens/min with 8 calls out, crashed every five minutes or so:
    the crashes catch calls in flight; the server completes and charges them, and no
    client reads their answer."""
    result = run("fixed", "max_in_flight=8", "restart_every_s=300", "restart_random=true",
                 refill=250, hours=1)
    s, bucket = result.summary, result.server.bucket
    # measured: 12 restarts left 27 calls in flight, charged 478 tokens
    assert s["restarts"] > 5 and s["unread_calls"] > 5 and s["unread_tokens"] > 50
    finished = log["finished"]
    assert len(finished) == len({id(p) for p in finished})  # none charged twice
    assert bucket.charged == sum(p.cost for p in finished)
    read = sum(e.tokens_consumed for e in result.recorder.endpoints.values())
    assert bucket.charged == read + s["unread_tokens"]
    assert bucket.initial + bucket.credited - bucket.charged == pytest.approx(bucket.balance)


def test_a_restart_keeps_the_shared_belief_and_a_deploy_wipes_it(monkeypatch):
    """With two processes on one `SharedBelief` (the seed's Redis keys): a restart's new
    processes adopt it, a deploy's start on a wiped one, recharging from 0."""
    seen, crash = [], Lives.crash

    def logged_crash(self, kind):
        old = self.collector.tokens.shared
        crash(self, kind)
        new = self.collector.tokens.shared
        seen.append((kind, new is old, new.balance, new.mode, new.recharge_since))

    monkeypatch.setattr(Lives, "crash", logged_crash)
    run("seed-after", "processes=2", "restart_every_s=3600", "deploy_every_s=7200", hours=4)
    assert [(kind, same) for kind, same, *_ in seen] == [
        (RESTART, True), (DEPLOY, False), (RESTART, True)]
    assert seen[1][2:] == (0.0, RECHARGING, 7200.0)


def test_restart_times_are_their_own_stream_and_paired():
    """Random intervals come from ``<seed>/restarts``: the same for a seed whatever the
    rest of the config (here the checkpoint), exponential with the mean asked for."""
    times = _times(3600.0, random.Random("0/restarts"))
    first = [next(times) for _ in range(2000)]
    again = _times(3600.0, random.Random("0/restarts"))
    assert [next(again) for _ in range(2000)] == first
    assert 3300_000 < first[-1] / 2000 < 3900_000
    clockwork = _times(1800.0, None)
    assert [next(clockwork) for _ in range(3)] == [1_800_000, 3_600_000, 5_400_000]
    a = run("seed-after", "restart_every_s=3600", "restart_random=true", hours=12, seed=1)
    b = run("seed-after", "restart_every_s=3600", "restart_random=true", "checkpoint=page",
            hours=12, seed=1)
    assert a.restarts == b.restarts and len(a.restarts) == a.summary["restarts"] > 5


def test_with_nothing_scheduled_there_is_one_life_and_no_new_figures():
    result = run("seed-after", hours=2)
    assert "restarts" not in result.summary and "unread_calls" not in result.summary
    assert type(result.collector.runtime).__name__ == "SimRuntime"
    with pytest.raises(ConfigError, match="checkpoint"):
        Config(checkpoint="commit")
    with pytest.raises(ConfigError, match="restart_every_s"):
        Config(restart_every_s=0.0)
