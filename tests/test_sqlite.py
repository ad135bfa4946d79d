"""SQLite storage: the Storage contract, one transaction per commit, the run log."""

from __future__ import annotations

import os
import sqlite3

import pytest

from collector.config import ConfigError
from collector.live.sqlite import SQLiteStorage
from collector.storage import Cursor, StoredDeal


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def deal(asin: str, source: str = "backfill", last_update: int = 7) -> StoredDeal:
    return StoredDeal(asin, source, last_update, f"title {asin}", 1000, 2000, "A1")


@pytest.fixture
def store(tmp_path):
    storage = SQLiteStorage(tmp_path / "deals.sqlite", clock=Clock())
    yield storage
    storage.close()


def test_a_fresh_database_starts_at_the_beginning(store):
    assert store.cursor() == Cursor(0, 0)
    assert store.watermark() is None
    assert store.count() == 0
    assert store.last_run() is None
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_commit_upserts_by_asin_and_keeps_first_seen_and_source(store):
    store.commit([deal("A"), deal("B")], 0.0, cursor=Cursor(0, 2))
    store.clock.t = 2000.0
    store.commit([deal("B", "recent", last_update=9)], 0.0, watermark=55)
    rows = {r[0]: r[1:] for r in store.db.execute(
        "SELECT asin, source, first_seen, last_seen, times_stored, last_update FROM deals")}
    assert rows == {"A": ("backfill", 1000.0, 1000.0, 1, 7),
                    "B": ("backfill", 1000.0, 2000.0, 2, 9)}
    assert store.known(["A", "C", "B"]) == {"A", "B"}
    assert store.cursor() == Cursor(0, 2) and store.watermark() == 55
    assert store.count_by_source() == {"backfill": 2}
    assert store.deals() == {"A": ("backfill", 1), "B": ("backfill", 2)}


def test_known_handles_more_asins_than_one_statement_takes(store):
    asins = [f"B{i:09d}" for i in range(1200)]
    store.commit([deal(a) for a in asins[::3]], 0.0)
    assert store.known(asins) == set(asins[::3])


def test_a_failed_commit_leaves_neither_deals_nor_cursor(store):
    store.commit([deal("A")], 0.0, cursor=Cursor(0, 4))
    bad = StoredDeal("B", "backfill", 1, None, 1, 1, "")  # title NOT NULL: the insert fails
    with pytest.raises(sqlite3.IntegrityError):
        store.commit([deal("C"), bad], 0.0, cursor=Cursor(0, 8))
    assert store.known(["A", "B", "C"]) == {"A"}
    assert store.cursor() == Cursor(0, 4)


def test_progress_survives_reopening(tmp_path):
    path = tmp_path / "deals.sqlite"
    first = SQLiteStorage(path)
    first.commit([deal("A")], 0.0, cursor=Cursor(3, 12), watermark=99)
    first.close()
    again = SQLiteStorage(path)
    assert (again.cursor(), again.watermark(), again.count()) == (Cursor(3, 12), 99, 1)


def test_run_log_heartbeat_and_end(store):
    run = store.begin_run("http://x", 1, {"chunk_size": 4})
    store.clock.t = 1005.0
    store.heartbeat(run, {"mode": "spending"}, {"calls": 3})
    store.log(run, "mode", "token manager now recharging")
    last = store.last_run()
    assert (last.id, last.pid, last.heartbeat_at, last.ended_at) == (run, os.getpid(), 1005.0, None)
    assert last.config == {"chunk_size": 4} and last.belief == {"mode": "spending"}
    assert last.stats == {"calls": 3}
    store.clock.t = 1010.0
    store.end_run(run, "stopped by SIGTERM")
    last = store.last_run()
    assert (last.ended_at, last.outcome) == (1010.0, "stopped by SIGTERM")
    assert store.log_entries(run) == [(run, 1005.0, "mode", "token manager now recharging")]


def test_a_second_collector_on_the_same_database_is_refused(store):
    store.begin_run("http://x", 1, {})
    with pytest.raises(ConfigError, match="already running"):
        store.begin_run("http://x", 1, {})


def test_a_dead_collector_does_not_block_a_new_one(store):
    run = store.begin_run("http://x", 1, {})
    store.db.execute("UPDATE runs SET pid = ? WHERE id = ?", (2**22 + 12345, run))  # no such pid
    assert store.begin_run("http://x", 1, {}) == run + 1
    store.clock.t += 3600  # a stale heartbeat also counts as gone
    assert store.begin_run("http://x", 1, {}) == run + 2


def test_readonly_reads_and_refuses_writes(tmp_path):
    path = tmp_path / "deals.sqlite"
    SQLiteStorage(path).commit([deal("A")], 0.0, cursor=Cursor(0, 4))
    reader = SQLiteStorage(path, readonly=True)
    assert reader.count() == 1 and reader.cursor() == Cursor(0, 4)
    with pytest.raises(sqlite3.OperationalError):
        reader.commit([deal("B")], 0.0)


def test_missing_or_foreign_files_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="no database at"):
        SQLiteStorage(tmp_path / "nope.sqlite", readonly=True)
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database at all, just text " * 100)
    with pytest.raises(ConfigError, match="not a collector database"):
        SQLiteStorage(junk)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)")
    with pytest.raises(ConfigError, match="not a collector database"):
        SQLiteStorage(other, readonly=True)
