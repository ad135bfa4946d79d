"""SQLite storage for the live collector: deals, progress, and the run log.

The embedded default (one file, WAL mode, so ``collector status`` can read
while a collector writes). Tables:

- ``deals``: one row per ASIN (upsert): where it was first found (backfill or
  recent), when first stored and last seen (stored, refreshed or listed on a
  /deal page the collector read; wall-clock epoch seconds; the janitor deletes
  by it), how often it was stored, and what the collector kept of it;
- ``progress``: the backfill cursor and the recent-deals watermark;
- ``runs``: one row per ``collector live`` run: pid, start, heartbeat, end and
  outcome, the API URL (redacted), the config, the TokenManager's last belief
  and the run's counters, so a status reader can rebuild the picture;
- ``log``: the run's notable events (start, stop, mode changes, task errors).

A chunk's deals and the cursor advance are one transaction (`commit`), and
SQLite's journal makes it all-or-nothing under kill -9 or a failed write (disk
full). A write lock another process holds is waited out, one line per retry.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.config import ConfigError
from collector.storage import Cursor, StoredDeal

SCHEMA = """
CREATE TABLE IF NOT EXISTS deals (
    asin TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    times_stored INTEGER NOT NULL,
    last_update INTEGER NOT NULL,
    title TEXT NOT NULL,
    buy_cents INTEGER NOT NULL,
    sell_cents INTEGER NOT NULL,
    seller_id TEXT NOT NULL,
    fetched_at REAL,
    offers_at REAL
);
CREATE TABLE IF NOT EXISTS progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cursor_page INTEGER NOT NULL,
    cursor_index INTEGER NOT NULL,
    watermark INTEGER,
    updated_at REAL
);
INSERT OR IGNORE INTO progress (id, cursor_page, cursor_index) VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    ended_at REAL,
    outcome TEXT,
    api_url TEXT NOT NULL,
    domain INTEGER NOT NULL,
    config TEXT NOT NULL,
    belief TEXT,
    stats TEXT
);
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    t REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
"""

UPSERT = """
INSERT INTO deals (asin, source, first_seen, last_seen, times_stored, last_update, title,
                   buy_cents, sell_cents, seller_id, fetched_at, offers_at)
VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (asin) DO UPDATE SET
    last_seen = excluded.last_seen, times_stored = times_stored + 1,
    last_update = excluded.last_update, title = excluded.title,
    buy_cents = excluded.buy_cents, sell_cents = excluded.sell_cents,
    seller_id = excluded.seller_id, fetched_at = excluded.fetched_at,
    offers_at = excluded.offers_at
"""

REFRESH = """
UPDATE deals SET buy_cents = ?, sell_cents = ?, last_seen = ?, fetched_at = ?,
                 offers_at = CASE WHEN ? THEN ? ELSE offers_at END
WHERE asin = ?
"""

SEEN = "UPDATE deals SET last_seen = ? WHERE asin = ?"

EXPIRE = "DELETE FROM deals WHERE last_seen < ? RETURNING asin"

ADDED_COLUMNS = {"fetched_at": "REAL", "offers_at": "REAL"}
"""Columns newer than the first schema, added to an older database when it is opened."""

STALE_S = 15.0  # a heartbeat older than this is a collector that is gone (they come every 2 s)
BUSY_S = 5.0  # how long one attempt to start a write waits on another process's lock
LOCK_TRIES = 60  # attempts before a lock is given up on: 5 minutes at BUSY_S


@dataclass(frozen=True)
class Run:
    """One row of ``runs`` as a status reader sees it."""

    id: int
    pid: int
    started_at: float
    heartbeat_at: float
    ended_at: float | None
    outcome: str | None
    api_url: str
    domain: int
    config: dict[str, Any]
    belief: dict[str, Any] | None
    stats: dict[str, Any]


class SQLiteStorage:
    """`collector.storage.Storage` on SQLite, plus the run log; `readonly` for status."""

    def __init__(self, path: str | Path, *, readonly: bool = False,
                 clock=time.time, busy_s: float | None = None,
                 warn: Callable[[str], None] = lambda message: None):
        """`busy_s`: how long each attempt to write waits on another process's lock;
        `warn` gets one line per attempt that found the database locked."""
        self.path = Path(path)
        self.clock = clock
        self.busy_s = busy_s = BUSY_S if busy_s is None else busy_s
        self.warn = warn
        try:
            if readonly:
                if not self.path.is_file():
                    raise ConfigError(f"no database at {path}")
                self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                          isolation_level=None)
            else:
                owner_only(self.path)
                self.db = sqlite3.connect(self.path, isolation_level=None)
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = FULL")
            self.db.execute(f"PRAGMA busy_timeout = {int(busy_s * 1000)}")
            if not readonly:
                self._waiting(lambda: self.db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))
                self._add_columns()
            self.db.execute("SELECT 1 FROM progress").fetchone()
        except sqlite3.DatabaseError as exc:
            if _locked(exc):
                raise ConfigError(f"{path}: {exc} by another process") from None
            raise ConfigError(f"{path}: not a collector database ({exc})") from None

    def close(self) -> None:
        self.db.close()

    def _add_columns(self) -> None:
        have = {row[1] for row in self.db.execute("PRAGMA table_info(deals)")}
        for name, kind in ADDED_COLUMNS.items():
            if name not in have:  # older rows: their data is as old as their last store
                self.db.execute(f"ALTER TABLE deals ADD COLUMN {name} {kind}")
                self.db.execute(f"UPDATE deals SET {name} = last_seen")
        self.db.execute("CREATE INDEX IF NOT EXISTS deals_fetched ON deals (fetched_at)")
        self.db.execute("CREATE INDEX IF NOT EXISTS deals_seen ON deals (last_seen)")

    def _waiting(self, begin: Callable[[], Any]) -> None:
        """Run `begin` (which takes the write lock first, so a failure leaves nothing
        half done), again while another process holds the lock: each attempt waits
        `busy_s`, and says so; after `LOCK_TRIES` the error stands."""
        for attempt in range(1, LOCK_TRIES + 1):
            try:
                begin()
                return
            except sqlite3.OperationalError as exc:
                if not _locked(exc) or attempt == LOCK_TRIES:
                    raise
                self.warn(f"database is locked by another process; retrying for "
                          f"{self.busy_s:g} s more (attempt {attempt + 1} of {LOCK_TRIES})")

    @contextmanager
    def _transaction(self, kind: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """`kind` IMMEDIATE takes the write lock at the start, waiting for it (`_waiting`);
        anything raised inside rolls the whole transaction back."""
        if kind == "IMMEDIATE":
            self._waiting(lambda: self.db.execute("BEGIN IMMEDIATE"))
        else:
            self.db.execute(f"BEGIN {kind}")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def snapshot(self):
        """A read transaction: every read inside it sees the same committed state."""
        return self._transaction("DEFERRED")

    # -- the Storage protocol ------------------------------------------------------
    def known(self, asins: Iterable[str]) -> set[str]:
        asins = list(asins)
        found: set[str] = set()
        for start in range(0, len(asins), 500):
            part = asins[start:start + 500]
            rows = self.db.execute(
                f"SELECT asin FROM deals WHERE asin IN ({','.join('?' * len(part))})", part)
            found.update(asin for (asin,) in rows)
        return found

    def commit(self, deals: Sequence[StoredDeal], now: float, *, cursor: Cursor | None = None,
               watermark: int | None = None) -> None:
        """Upsert `deals` and move the cursor/watermark in one transaction.

        Times stored are the wall clock's (`now`, the runtime's seconds since
        its start, means nothing across restarts).
        """
        wall = self.clock()
        with self._transaction() as db:
            db.executemany(UPSERT, [(d.asin, d.source, wall, wall, d.last_update, d.title,
                                     d.buy_cents, d.sell_cents, d.seller_id, wall, wall)
                                    for d in deals])
            if cursor is not None:
                db.execute("UPDATE progress SET cursor_page = ?, cursor_index = ?, updated_at = ?",
                           (cursor.page, cursor.index, wall))
            if watermark is not None:
                db.execute("UPDATE progress SET watermark = ?, updated_at = ?", (watermark, wall))

    def refresh(self, rows: Sequence[tuple[str, int, int]], now: float, *,
                offers: bool) -> None:
        wall = self.clock()
        with self._transaction() as db:
            db.executemany(REFRESH, [(buy, sell, wall, wall, offers, wall, asin)
                                     for asin, buy, sell in rows])

    def stale(self, now: float, min_age_s: float, limit: int) -> list[tuple[str, float]]:
        wall = self.clock()
        rows = self.db.execute(
            "SELECT asin, offers_at FROM deals WHERE fetched_at <= ? ORDER BY fetched_at "
            "LIMIT ?", (wall - min_age_s, limit))
        return [(asin, wall - (offers_at or 0.0)) for asin, offers_at in rows]

    def seen(self, asins: Iterable[str], now: float) -> None:
        wall = self.clock()
        with self._transaction() as db:
            db.executemany(SEEN, [(wall, asin) for asin in asins])

    def expire(self, now: float, ttl_s: float) -> list[str]:
        """One DELETE, as the seed's janitor (which also VACUUMed after 1000 rows; SQLite
        reuses the freed pages, so this does not)."""
        with self._transaction() as db:
            return [asin for (asin,) in db.execute(EXPIRE, (self.clock() - ttl_s,)).fetchall()]

    def cursor(self) -> Cursor:
        page, index = self.db.execute("SELECT cursor_page, cursor_index FROM progress").fetchone()
        return Cursor(page, index)

    def watermark(self) -> int | None:
        return self.db.execute("SELECT watermark FROM progress").fetchone()[0]

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM deals").fetchone()[0]

    # -- for status and tests ----------------------------------------------------------
    def count_by_source(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT source, COUNT(*) FROM deals GROUP BY source"))

    def count_since(self, t: float) -> int:
        """Deals first stored at or after `t` (epoch seconds, this storage's clock)."""
        return self.db.execute("SELECT COUNT(*) FROM deals WHERE first_seen >= ?",
                               (t,)).fetchone()[0]

    def deals(self) -> dict[str, tuple[str, int]]:
        """ASIN -> (source, times stored), for every stored deal."""
        rows = self.db.execute("SELECT asin, source, times_stored FROM deals")
        return {asin: (source, times) for asin, source, times in rows}

    # -- the run log -----------------------------------------------------------------
    def begin_run(self, api_url: str, domain: int, config: dict[str, Any]) -> int:
        """Open a run, refusing if another live collector heartbeats on this database."""
        now = self.clock()
        last = self.last_run()
        if last is not None and last.ended_at is None and now - last.heartbeat_at < STALE_S \
                and _alive(last.pid):
            raise ConfigError(f"{self.path}: a collector (pid {last.pid}) is already running on "
                              "this database")
        with self._transaction() as db:
            run = db.execute(
                "INSERT INTO runs (pid, started_at, heartbeat_at, api_url, domain, config) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (os.getpid(), now, now, api_url, domain, json.dumps(config))).lastrowid
        return run

    def heartbeat(self, run: int, belief: dict[str, Any], stats: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute("UPDATE runs SET heartbeat_at = ?, belief = ?, stats = ? WHERE id = ?",
                       (self.clock(), json.dumps(belief), json.dumps(stats), run))

    def end_run(self, run: int, outcome: str) -> None:
        with self._transaction() as db:
            now = self.clock()
            db.execute("UPDATE runs SET heartbeat_at = ?, ended_at = ?, outcome = ? WHERE id = ?",
                       (now, now, outcome, run))

    def log(self, run: int, kind: str, message: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO log (run_id, t, kind, message) VALUES (?, ?, ?, ?)",
                       (run, self.clock(), kind, message))

    def last_run(self) -> Run | None:
        row = self.db.execute(
            "SELECT id, pid, started_at, heartbeat_at, ended_at, outcome, api_url, domain, "
            "config, belief, stats FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        *head, config, belief, stats = row
        return Run(*head, json.loads(config), json.loads(belief) if belief else None,
                   json.loads(stats) if stats else {})

    def log_entries(self, run: int | None = None) -> list[tuple[int, float, str, str]]:
        """(run, time, kind, message) rows, oldest first; one run's, or all."""
        query = "SELECT run_id, t, kind, message FROM log"
        args: tuple = ()
        if run is not None:
            query, args = query + " WHERE run_id = ?", (run,)
        return list(self.db.execute(query + " ORDER BY id", args))


def owner_only(path: Path) -> None:
    """Make the database at `path` readable by its owner only (0600), before SQLite opens it.

    A missing file is created empty with mode 0600 (SQLite takes an empty file for a
    new database); an existing one, and any -wal or -shm file beside it, loses its
    group and other bits. SQLite creates the -wal and -shm files later with the main
    file's mode, so they are 0600 too. A file this user may not chmod is left as it is.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError:
        return  # SQLite says why it cannot open it
    for file in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm"))):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                file.chmod(mode & 0o700)
        except OSError:
            pass


def _locked(exc: sqlite3.Error) -> bool:
    """Another process holds the lock (SQLITE_BUSY or SQLITE_LOCKED)."""
    return "locked" in str(exc) or "busy" in str(exc)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
