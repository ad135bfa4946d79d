"""The live database under faults (issue 14, item 6): another process holding the lock,
and a write that fails (disk full) in the middle of a chunk.

A lock held elsewhere makes the collector wait and retry, one line per retry, and
nothing is lost or corrupted; a failed write stops it cleanly (exit status 1, one
error line), and the chunk whose write failed left neither its deals nor its cursor
advance behind: the database is exactly as the last commit left it.
"""

from __future__ import annotations

import sqlite3
import threading

import pytest

from collector.config import Config
from collector.live import main as live_main
from collector.live import sqlite as live_sqlite
from collector.live.main import LiveOptions, run_live
from collector.live.sqlite import SQLiteStorage
from collector.storage import Cursor, StoredDeal
from sim.transport import MockTransport
from tests.test_live import FAST, KEY, mock


def deal(asin: str) -> StoredDeal:
    return StoredDeal(asin=asin, source="backfill", last_update=1, title="t", buy_cents=100,
                      sell_cents=200, seller_id="S")


def hold_lock(path, held: threading.Event, release: threading.Event) -> threading.Thread:
    """Another connection (as another process would) holding ``BEGIN EXCLUSIVE`` until
    `release` is set; `held` is set once it has the lock."""
    def hold():
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        db.execute("UPDATE progress SET updated_at = 1")
        held.set()
        release.wait(30)
        db.execute("COMMIT")
        db.close()
    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(10)
    return thread


def integrity(path) -> str:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def test_a_commit_waits_out_a_lock_held_elsewhere_and_says_so(tmp_path):
    path = tmp_path / "deals.sqlite"
    said: list[str] = []
    store = SQLiteStorage(path, busy_s=0.1, warn=said.append)
    held, release = threading.Event(), threading.Event()
    thread = hold_lock(path, held, release)
    # let it go once the collector has said it waits twice
    store.warn = lambda line: (said.append(line), len(said) >= 2 and release.set())
    store.commit([deal("B1"), deal("B2")], 0.0, cursor=Cursor(0, 2))
    thread.join(10)
    assert len(said) >= 2
    assert all(line.startswith("database is locked by another process; retrying for 0.1 s")
               for line in said)
    assert store.count() == 2 and store.cursor() == Cursor(0, 2)
    store.close()
    assert integrity(path) == "ok"


def test_opening_a_locked_database_waits_too(tmp_path):
    path = tmp_path / "deals.sqlite"
    SQLiteStorage(path).close()
    held, release = threading.Event(), threading.Event()
    thread = hold_lock(path, held, release)
    said: list[str] = []

    def warn(line):
        said.append(line)
        release.set()

    store = SQLiteStorage(path, busy_s=0.1, warn=warn)
    thread.join(10)
    assert said and store.cursor() == Cursor(0, 0)
    store.close()


def test_a_lock_held_past_every_retry_is_a_database_error(tmp_path, monkeypatch):
    monkeypatch.setattr(live_sqlite, "LOCK_TRIES", 3)
    path = tmp_path / "deals.sqlite"
    said: list[str] = []
    store = SQLiteStorage(path, busy_s=0.05, warn=said.append)
    held, release = threading.Event(), threading.Event()
    thread = hold_lock(path, held, release)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.commit([deal("B1")], 0.0, cursor=Cursor(0, 1))
    release.set()
    thread.join(10)
    assert len(said) == 2 and store.count() == 0 and store.cursor() == Cursor(0, 0)
    store.close()


def options(tmp_path, *overrides, duration=3.0):
    config = Config.load("seed-after", overrides=[*FAST, *overrides])
    return LiveOptions(config, "http://127.0.0.1:9", str(tmp_path / "deals.sqlite"),
                       status_every=1.0, duration=duration)


def test_a_live_run_waits_out_a_lock_and_goes_on(tmp_path, capsys, monkeypatch):
    """A live run whose database another process locks for a while: it says so on stderr,
    carries on once the lock is gone, stores deals and ends with status 0."""
    monkeypatch.setattr(live_sqlite, "BUSY_S", 0.1)
    path = tmp_path / "deals.sqlite"
    SQLiteStorage(path).close()
    held, release = threading.Event(), threading.Event()
    waits: list[str] = []
    original = SQLiteStorage.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        warn = self.warn

        def counting(line):
            warn(line)
            waits.append(line)
            if len(waits) >= 3:
                release.set()
        self.warn = counting
        hold_lock(path, held, release)  # locked from the run's first write on

    monkeypatch.setattr(live_main.SQLiteStorage, "__init__", init)
    assert run_live(options(tmp_path), KEY, MockTransport(mock(), KEY)) == 0
    err = capsys.readouterr().err
    assert err.count("database is locked by another process") >= 3
    assert " error " not in err and "Traceback" not in err
    store = SQLiteStorage(path, readonly=True)
    assert store.count() > 0 and store.last_run().ended_at is not None
    store.close()
    assert integrity(path) == "ok"


class DiskFull:
    """A connection whose writes fail, as on a full disk, from the `fail_at`-th cursor
    advance on: that one fails after its chunk's deals were written in the same
    transaction. It records what each COMMIT left behind."""

    def __init__(self, db: sqlite3.Connection, fail_at: int):
        self.db, self.fail_at = db, fail_at
        self.advances = 0
        self.full = False
        self.written = 0  # deals in the failing transaction when its cursor advance failed
        self.committed: list[tuple[int, tuple[int, int]]] = []  # (deals, cursor) per commit

    def execute(self, sql, *args):
        if sql.startswith("UPDATE progress SET cursor_page"):
            self.advances += 1
            if not self.full and self.advances >= self.fail_at:
                self.full, self.written = True, self._state()[0]  # the chunk's deals are in
        if self.full and sql.lstrip().split()[0] in ("INSERT", "UPDATE", "DELETE"):
            raise sqlite3.OperationalError("database or disk is full")
        result = self.db.execute(sql, *args)
        if sql == "COMMIT":
            self.committed.append(self._state())
        return result

    def executemany(self, sql, rows):
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.executemany(sql, rows)

    def _state(self):
        count = self.db.execute("SELECT COUNT(*) FROM deals").fetchone()[0]
        return count, self.db.execute("SELECT cursor_page, cursor_index FROM progress").fetchone()

    def __getattr__(self, name):
        return getattr(self.db, name)


@pytest.mark.parametrize("fail_at", [1, 3])
def test_a_full_disk_mid_chunk_stops_cleanly_and_commits_no_half_chunk(tmp_path, capsys,
                                                                       monkeypatch, fail_at):
    faulty: list[DiskFull] = []
    original = SQLiteStorage.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.db = DiskFull(self.db, fail_at)
        faulty.append(self.db)

    monkeypatch.setattr(live_main.SQLiteStorage, "__init__", init)
    status = run_live(options(tmp_path, "chunk_size=20", duration=30.0), KEY,
                      MockTransport(mock(backlog=600), KEY))
    monkeypatch.undo()
    assert status == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if " error " in line]
    assert len(errors) == 1 and "database write failed: database or disk is full" in errors[0]
    assert "Traceback" not in err
    disk = faulty[0]
    assert disk.full and disk.advances >= fail_at
    path = tmp_path / "deals.sqlite"
    assert integrity(path) == "ok"
    store = SQLiteStorage(path)
    last_deals, last_cursor = disk.committed[-1]
    assert disk.written > last_deals  # the chunk had written deals when its cursor failed
    assert store.count() == last_deals  # and they rolled back with it
    assert store.cursor() == Cursor(*last_cursor)
    store.close()
