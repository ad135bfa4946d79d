"""`collector live` in process: the loop, signals, fatal errors, HTTP, redaction.

These runs use the mock Keepa in process (`sim.transport.MockTransport`) or a
tiny stdlib HTTP server, without latency, for a few seconds each; the runs
against ``sim serve`` are in test_live_serve.py.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from collector.cli import main as collector_main
from collector.config import Config, ConfigError
from collector.presets import PRESETS
from collector.live.http import HttpTransport, check_url
from collector.live.log import LiveLog
from collector.live.main import LiveOptions, read_key, run_live
from collector.live.redact import Redactor
from collector.live.sqlite import SQLiteStorage
from collector.runtime import Request, TransportError
from sim.keepa import DealMarket, MarketSettings, MockKeepa, ServerSettings
from sim.transport import MockTransport, wall_ms

KEY = "Qz7xKr2vW9pL4mJt"
FAST = ["chunk_overhead_s=0", "commit_overhead_s=0", "dispatch_overhead_s=0",
        "min_interval_s=0.01"]


def mock(backlog: int = 300, **server) -> MockKeepa:
    start = wall_ms()
    settings = ServerSettings(**{"rate": 600, "latency": False, **server})
    market = MarketSettings(backlog=backlog, arrivals_per_hour=0)
    return MockKeepa(settings, DealMarket(market, 1, start), 1, start)


def options(tmp_path, *overrides: str, preset: str = "seed-after", **kw) -> LiveOptions:
    config = Config.load(preset, overrides=[*FAST, *overrides])
    return LiveOptions(config, "http://127.0.0.1:9", str(tmp_path / "deals.sqlite"),
                       **{"status_every": 1.0, **kw})


def test_a_short_run_stores_deals_and_ends_cleanly(tmp_path, capsys):
    status = run_live(options(tmp_path, duration=2.0), KEY, MockTransport(mock(), KEY))
    assert status == 0
    store = SQLiteStorage(tmp_path / "deals.sqlite", readonly=True)
    run = store.last_run()
    assert store.count() > 0
    assert run.outcome == "stopped after 2 s" and run.ended_at is not None
    assert run.stats["stored"] == store.count() and run.stats["api_calls"] > 0
    assert run.belief["mode"] in ("spending", "recharging")
    err = capsys.readouterr().err
    assert "status  spending" in err and "stopped after 2 s" in err


def test_the_run_resumes_where_the_last_one_committed(tmp_path):
    server = mock(backlog=9000)  # more than two 2-second runs can walk
    run_live(options(tmp_path, duration=2.0), KEY, MockTransport(server, KEY))
    store = SQLiteStorage(tmp_path / "deals.sqlite", readonly=True)
    first_cursor, first_count = store.cursor(), store.count()
    run_live(options(tmp_path, duration=2.0), KEY, MockTransport(server, KEY))
    assert (store.cursor().page, store.cursor().index) > (first_cursor.page, first_cursor.index)
    assert store.count() > first_count > 0
    assert all(times == 1 for _, times in store.deals().values())
    started = [m for _, _, kind, m in store.log_entries() if "started" in m]
    assert f"cursor page {first_cursor.page} index {first_cursor.index}" in started[1]


def test_a_429_waits_for_the_refill_the_envelope_announces_then_retries(tmp_path):
    """An empty bucket whose next lump is 1.5 s away, and a client with no budget of its own
    (the reactive preset): the first calls meet 429s, wait as the envelope says and go
    through on the retry; the burst after the lump ends in another 429, whose wait (the
    next lump, a minute away) the run's end interrupts. Never two 429s in a row."""
    server = mock(initial=0, phase_ms=(wall_ms() + 1500) % 60_000)
    opts = options(tmp_path, "poll_interval_s=120", preset="reactive", duration=4.0)
    assert run_live(opts, KEY, MockTransport(server, KEY)) == 0
    run = SQLiteStorage(tmp_path / "deals.sqlite", readonly=True).last_run()
    assert run.stats["http_429"] >= 2 and run.stats["max_429_run"] == 1
    assert run.stats["stored"] > 0
    assert server.http_429 == run.stats["http_429"]


def test_sigterm_interrupts_a_long_wait_and_exits_0(tmp_path):
    """Start with an empty bucket and a 10-minute poll: only the signal can end the wait."""
    server = mock(initial=0, rate=1)
    opts = options(tmp_path, "refill_rate=1", "poll_interval_s=600", "sync_on_start=false")
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    began = time.monotonic()
    assert run_live(opts, KEY, MockTransport(server, KEY)) == 0
    assert time.monotonic() - began < 60  # nowhere near the 600 s the wait asked for
    run = SQLiteStorage(tmp_path / "deals.sqlite", readonly=True).last_run()
    assert run.outcome == "stopped by SIGTERM"
    assert run.belief["mode"] == "recharging"


def test_a_rejected_key_stops_with_one_line_and_status_1(tmp_path, capsys):
    server = mock(key="the-right-key")
    assert run_live(options(tmp_path), KEY, MockTransport(server, KEY)) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if " error " in line]
    assert len(errors) == 1
    assert "HTTP 400" in errors[0] and "rejected the key or a parameter" in errors[0]
    run = SQLiteStorage(tmp_path / "deals.sqlite", readonly=True).last_run()
    assert run.outcome.startswith("stopped: /")
    # the zeroed envelopes of the 400s were not taken for a reading of the bucket
    assert run.belief["read_at"] is None and run.belief["rate"] == 5.0


@pytest.mark.parametrize("server, override, status, hint", [
    ({"expired": True}, [], 402, "no active API plan"),
    # a server that takes fewer ASINs with offers than the batch holds (the Java client's
    # "max 20 ASINs if offers is used", here 2): the config cannot know, Keepa answers 405
    ({"offers_max_asins": 2}, ["batch_size=4"], 405, "out of range"),
])
def test_an_unpaid_plan_or_a_bad_parameter_stops_with_status_1(tmp_path, capsys, server,
                                                               override, status, hint):
    opts = options(tmp_path, *override)
    assert run_live(opts, KEY, MockTransport(mock(**server), KEY)) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if " error " in line]
    assert len(errors) == 1 and f"HTTP {status}" in errors[0] and hint in errors[0]


class Broken:
    async def send(self, request):
        raise KeyError(f"bug while sending with key={KEY}")


def test_a_task_that_dies_of_a_bug_stops_the_run_without_a_traceback(tmp_path, capsys):
    assert run_live(options(tmp_path, "sync_on_start=false"), KEY, Broken()) == 1
    err = capsys.readouterr().err
    assert "a task failed: KeyError" in err and "Traceback" not in err
    assert KEY not in err and "key=***" in err


def test_quiet_and_json_lines(tmp_path):
    out = io.StringIO()
    log = LiveLog(Redactor(KEY), quiet=True, as_json=True, path=str(tmp_path / "run.log"),
                  stream=out)
    log.write("status", "spending", {"calls": 3})
    log.write("warning", f"uh oh {KEY}")
    log.close()
    assert [json.loads(x)["kind"] for x in out.getvalue().splitlines()] == ["warning"]
    lines = [json.loads(x) for x in (tmp_path / "run.log").read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["status", "warning"]
    assert lines[0]["calls"] == 3 and lines[1]["message"] == "uh oh ***"


# -- the key: from where, and never out ---------------------------------------------------
def test_the_key_comes_from_a_file_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("KEEPA_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="KEEPA_API_KEY"):
        read_key(None)
    monkeypatch.setenv("KEEPA_API_KEY", " from-env \n")
    assert read_key(None) == "from-env"
    (tmp_path / "key").write_text("from-file\n")
    assert read_key(str(tmp_path / "key")) == "from-file"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        read_key(str(tmp_path / "empty"))


def test_cli_bad_input_is_one_line_and_status_2(tmp_path, monkeypatch):
    monkeypatch.delenv("KEEPA_API_KEY", raising=False)
    runner = CliRunner()
    db = str(tmp_path / "d.sqlite")
    cases = [
        (["live", "--db", db], "KEEPA_API_KEY"),
        (["live", "--db", db, "--key", KEY], "No such option"),
        (["live", "--db", db, "--key-file", str(tmp_path / "missing")], "cannot read key file"),
        (["live", "--db", db, "--set", "chunk_size=0"], "chunk_size: must be > 0"),
        (["status", "--db", db], "no database at"),
    ]
    for args, message in cases:
        result = runner.invoke(collector_main, args)
        assert result.exit_code == 2, args
        assert message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    monkeypatch.setenv("KEEPA_API_KEY", KEY)
    for args, message in [(["--domain", "7"], "--domain: must be one of"),
                          (["--api-url", "ftp://example.com"], "--api-url: expected http(s)"),
                          (["--status-every", "0"], "--status-every: must be > 0")]:
        result = runner.invoke(collector_main, ["live", "--db", db, *args])
        assert result.exit_code == 2 and message in result.stderr, result.stderr
        assert KEY not in result.stderr + result.stdout


def test_live_runs_every_preset_and_a_written_config_exactly(tmp_path, monkeypatch):
    """What `collector live` runs is what the preset or the TOML (as `sim tune` writes it
    with `Config.to_toml`) says, knob for knob: the run log keeps the config it ran."""
    monkeypatch.setenv("KEEPA_API_KEY", KEY)
    tuned = PRESETS["seed-before"].updated({
        "chunk_size": 8, "batch_size": 8, "min_interval_s": 2.5, "max_deficit": -180,
        "burst_threshold": "40<10,150", "peek_filter": True})
    (tmp_path / "best.toml").write_text(tuned.to_toml("written like sim tune writes it"))
    cases = [(["--preset", name], config) for name, config in PRESETS.items()]
    cases.append((["--config", str(tmp_path / "best.toml")], tuned))
    cases.append(([], PRESETS["fixed"]))  # live's default: no copied seed faults
    for number, (args, expected) in enumerate(cases):
        db = tmp_path / f"{number}.sqlite"
        result = CliRunner().invoke(collector_main, [
            "live", *args, "--db", str(db), "--api-url", f"http://127.0.0.1:{free_port()}",
            "--duration", "0.3", "--quiet"])
        assert result.exit_code == 0, result.stderr
        run = SQLiteStorage(db, readonly=True).last_run()
        assert Config().updated(run.config) == expected


def test_redactor_blanks_the_key_raw_encoded_and_as_a_parameter():
    redact = Redactor("a b/c+d")
    text = "GET /deal?key=a%20b%2Fc%2Bd&x=1 and key=ZZZ&y and a+b%2Fc%2Bd and a b/c+d"
    out = redact(text)
    assert "a b/c+d" not in out and "a%20b%2Fc%2Bd" not in out and "a+b%2Fc%2Bd" not in out
    assert "ZZZ" not in out and "x=1" in out


def test_check_url():
    assert check_url("http://127.0.0.1:8700/") == "http://127.0.0.1:8700"
    for bad in ("127.0.0.1:8700", "ftp://x", "http://", "not a url"):
        with pytest.raises(ConfigError, match="--api-url"):
            check_url(bad)


# -- HTTP against a real socket ---------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    replies: dict[str, tuple[int, bytes]] = {
        "/token": (200, json.dumps({"tokensLeft": 5, "refillRate": 5}).encode()),
        "/product": (503, b"<html>503 Service Unavailable</html>"),
        "/seller": (200, b"[1, 2]"),
    }
    seen: list[tuple[int, str]] = []  # (client port, Accept-Encoding) per request

    def do_GET(self):
        self.seen.append((self.client_address[1], self.headers.get("Accept-Encoding", "")))
        if self.path.startswith("/drop"):
            self.close_connection = True
            return
        status, body = self.replies[self.path.split("?")[0]]
        self.send_response(status)
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def tiny_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_transport_answers_errors_and_no_answers(tiny_server, caplog):
    """Gzipped JSON objects become bodies, anything else None, over one kept-alive
    connection; no answer is a TransportError without the key, even with httpx logging
    every request at DEBUG."""
    caplog.set_level(logging.DEBUG)
    redact = Redactor(KEY)
    redact.guard_library_logs()

    async def calls():
        http = HttpTransport(tiny_server, KEY, redact)
        dead = HttpTransport(f"http://127.0.0.1:{free_port()}", KEY, redact)
        try:
            token = await http.send(Request("token"))
            product = await http.send(Request("product", {"asin": "B1"}))
            seller = await http.send(Request("seller"))
            with pytest.raises(TransportError) as dropped:
                await http.send(Request("drop"))
            with pytest.raises(TransportError) as refused:
                await dead.send(Request("token"))
        finally:
            await http.close()
            await dead.close()
        return token, product, seller, dropped.value, refused.value

    token, product, seller, dropped, refused = asyncio.run(calls())
    assert (token.status, token.body) == (200, {"tokensLeft": 5, "refillRate": 5})
    assert (product.status, product.body) == (503, None)
    assert (seller.status, seller.body) == (200, None)
    ports, encodings = zip(*_Handler.seen[:3])
    assert len(set(ports)) == 1 and set(encodings) == {"gzip"}
    for exc in (dropped, refused):
        assert KEY not in str(exc) and exc.__cause__ is None and exc.__suppress_context__
    assert "ConnectError" in str(refused)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request: GET" in logged and "key=***" in logged
    assert KEY not in logged
