"""``collector live``: the collector on asyncio, HTTP and SQLite, until told to stop.

The main loop only watches: every quarter second it looks for a stop signal
(SIGINT, SIGTERM), a fatal API error the scheduler recorded (bad key,
unpaid plan, bad parameter), a task that died of a bug or of a failed
database write (disk full: exit status 1, one line), or the end of
``--duration``; every `HEARTBEAT_S` it saves the heartbeat, the
TokenManager's belief and the counters; every ``status_every`` seconds it
writes the status line. Stopping cancels the tasks where they wait, so
nothing more is called, and what is committed stays committed: a chunk is
stored with its cursor in one transaction or not at all.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from collector.app import Collector
from collector.config import Config, ConfigError
from collector.keepa import DOMAINS

from .http import HttpTransport, check_url
from .log import LiveLog
from .redact import Redactor
from .runtime import LiveRuntime, Transport
from .sqlite import SQLiteStorage
from .stats import LiveStats

TICK_S = 0.25
HEARTBEAT_S = 2.0
HINTS = {400: "Keepa rejected the key or a parameter", 402: "the key has no active API plan",
         404: "no such endpoint: check --api-url", 405: "a parameter is out of range"}


class Fatal(Exception):
    """The run stopped on an error the collector cannot get past (one-line message)."""


@dataclass(frozen=True)
class LiveOptions:
    config: Config
    api_url: str
    db: str
    domain: int = 1
    quiet: bool = False
    log_json: bool = False
    log_file: str | None = None
    status_every: float = 10.0
    duration: float | None = None


def read_key(key_file: str | None) -> str:
    """The API key from `key_file`, else from ``KEEPA_API_KEY``; never from the command line."""
    if key_file is not None:
        return read_key_file(key_file)
    key = os.environ.get("KEEPA_API_KEY", "").strip()
    if not key:
        raise ConfigError("no API key: set KEEPA_API_KEY or pass --key-file FILE")
    return key


def read_key_file(path: str) -> str:
    """The key held in the file at `path`, surrounding whitespace stripped (a key given
    this way stays out of the process list); ``sim serve --key-file`` reads it here too."""
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read key file {path}: "
                          f"{getattr(exc, 'strerror', None) or 'not text'}") from None
    if not key:
        raise ConfigError(f"key file {path} is empty")
    return key


def check(options: LiveOptions) -> None:
    check_url(options.api_url)
    if options.domain not in DOMAINS:
        raise ConfigError(f"--domain: must be one of {', '.join(map(str, DOMAINS))}, "
                          f"got {options.domain}")
    if not options.status_every > 0:
        raise ConfigError(f"--status-every: must be > 0, got {options.status_every:g}")
    if options.duration is not None and not options.duration > 0:
        raise ConfigError(f"--duration: must be > 0, got {options.duration:g}")


def run_live(options: LiveOptions, key: str, transport: Transport | None = None) -> int:
    """Run until stopped; the exit status: 0 when stopped, 1 when the run failed.

    A failure is one error line (on stderr even with ``--quiet``), never a
    traceback, which could carry the key. `transport` replaces HTTP (tests
    pass the in-process mock's).
    """
    redact = Redactor(key)
    redact.guard_library_logs()
    try:
        return _run_logged(options, key, redact, transport)
    except ConfigError as exc:
        raise ConfigError(redact(str(exc))) from None


def _run_logged(options: LiveOptions, key: str, redact: Redactor,
                transport: Transport | None) -> int:
    check(options)
    log = LiveLog(redact, quiet=options.quiet, as_json=options.log_json, path=options.log_file)
    try:
        storage = SQLiteStorage(options.db, warn=lambda message: log.write("warning", message))
        try:
            asyncio.run(_run(options, key, redact, log, storage, transport))
        finally:
            storage.close()
    except Fatal as exc:
        log.write("error", str(exc))
        return 1
    except ConfigError:
        raise
    except Exception as exc:  # a bug or a broken disk: one redacted line, not a traceback
        log.write("error", f"collector failed: {_describe(exc)}")
        return 1
    finally:
        log.close()
    return 0


async def _run(options: LiveOptions, key: str, redact: Redactor, log: LiveLog,
               storage: SQLiteStorage, transport: Transport | None) -> None:
    config = options.config
    run = storage.begin_run(redact(options.api_url), options.domain, config.to_dict())
    http = None
    if transport is None:
        transport = http = HttpTransport(options.api_url, key, redact, config.max_in_flight)
    runtime = LiveRuntime(transport)
    offset = time.time() - runtime.now()  # runtime seconds + offset = epoch seconds

    def notify(kind: str, message: str) -> None:
        log.write(kind, message)
        storage.log(run, kind, redact(message))

    stats = LiveStats(notify)
    collector = Collector(runtime, config, storage, stats, options.domain)
    stop = _StopSignal()
    notify("event", f"run {run} started: {redact(options.api_url)}, domain {options.domain}, "
           f"{storage.count():,} deals stored, cursor {_cursor(storage)}")
    outcome, failed, broken = "", False, False  # broken: a database write failed
    try:
        collector.start()
        next_beat = next_status = 0.0
        while True:
            left = math.inf if options.duration is None else options.duration - runtime.now()
            await stop.wait(min(TICK_S, max(0.0, left)))
            now = runtime.now()
            if stop.name:
                outcome = f"stopped by {stop.name}"
            elif (fatal := collector.scheduler.fatal) is not None:
                hint = HINTS.get(fatal.status)
                outcome, failed = f"stopped: {fatal}" + (f" ({hint})" if hint else ""), True
            elif isinstance(runtime.failure, sqlite3.Error):  # the chunk was rolled back
                outcome, failed = f"stopped: database write failed: {runtime.failure}", True
                broken = True
            elif runtime.failure is not None:
                outcome, failed = f"stopped: a task failed: {_describe(runtime.failure)}", True
            elif options.duration is not None and now >= options.duration:
                outcome = f"stopped after {options.duration:g} s"
            if outcome:
                break
            if now >= next_beat:
                try:
                    storage.heartbeat(run, collector.tokens.export(offset), stats.as_dict(offset))
                except sqlite3.Error as exc:
                    outcome, failed, broken = f"stopped: database write failed: {exc}", True, True
                    break
                next_beat = now + HEARTBEAT_S
            if now >= next_status:
                _status_line(log, collector, stats, storage)
                next_status = now + options.status_every
    finally:
        stop.remove()
        await runtime.stop()
        if http is not None:
            await http.close()
        try:
            storage.heartbeat(run, collector.tokens.export(offset), stats.as_dict(offset))
            storage.end_run(run, redact(outcome or "stopped: interrupted"))
        except sqlite3.Error:
            if not broken:
                raise
            # the database takes no write: its run stays open, but the collector stopped
    _status_line(log, collector, stats, storage)
    if failed:
        try:
            storage.log(run, "error", redact(outcome))
        except sqlite3.Error:
            pass  # said on stderr and in the log file all the same
        raise Fatal(outcome)
    notify("event", outcome)


def _status_line(log: LiveLog, collector: Collector, stats: LiveStats,
                 storage: SQLiteStorage) -> None:
    state = collector.tokens.state(collector.runtime.now())
    c = stats.counts
    stored = storage.count()
    log.write("status",
              f"{state.mode} | est {state.estimate:,.0f} target {state.target:,.0f} | "
              f"deals {stored:,} (+{c.stored:,}) | calls {c.api_calls:,} | 429s {c.http_429:,} | "
              f"fail {c.failures:,}",
              {"mode": state.mode, "estimate": round(state.estimate, 3), "target": state.target,
               "eta_s": None if math.isinf(state.eta_s) else round(state.eta_s, 3),
               "deals_stored": stored, "stored_this_run": c.stored, "calls": c.api_calls,
               "http_429": c.http_429, "failures": c.failures,
               "tokens_consumed": c.tokens_consumed})


def _cursor(storage: SQLiteStorage) -> str:
    cursor = storage.cursor()
    return f"page {cursor.page} index {cursor.index}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


class _StopSignal:
    """SIGINT and SIGTERM set a flag the main loop waits on."""

    def __init__(self) -> None:
        self.name = ""
        self._event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._set, sig.name)

    def _set(self, name: str) -> None:
        self.name = self.name or name
        self._event.set()

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass

    def remove(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.remove_signal_handler(sig)
