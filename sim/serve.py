"""``sim serve``: the mock Keepa over HTTP, on the real clock.

The same `MockKeepa` the simulator drives answers the paths and parameters of
api.keepa.com (``/deal``, ``/product``, ``/seller``, ``/token``; trailing
slash tolerated; ``key`` in the query string; ``/deal`` by GET with
``selection=`` or by POST with the JSON as the body; gzip when asked), so a
Keepa client pointed at it cannot tell the difference for these endpoints.

One lock guards the mock: `MockKeepa.begin` and `MockKeepa.finish` run under
it, the simulated processing time is slept outside it, so concurrent clients
are admitted and charged the way the real server does (keepa-api.md §3.4).
`start` runs a server in a thread (for tests: the URL, the mock's books and a
stop handle); the ``serve`` command runs one until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import gzip
import json
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TextIO
from urllib.parse import parse_qsl, urlsplit

import click

from collector.config import ConfigError
from sim.keepa import DealMarket, MockKeepa, ServerSettings
from sim.keepa.server import DROPPED
from sim.settings import Scenario, split_overrides
from sim.transport import wall_ms

_KEY = re.compile(r"(key=)[^&\s\"']*", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One request by the server's own books."""

    path: str
    status: int
    balance_at_arrival: float  # the balance admission looked at
    charged: float
    balance_after: float


@dataclass
class Served:
    """A running server: where it listens, the mock behind it, how to stop it."""

    url: str
    mock: MockKeepa
    lock: threading.Lock
    journal: list[Entry] | None = field(default_factory=list)  # None: not kept
    httpd: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()
            self.httpd = self.thread = None


def build_mock(scenario: Scenario, start_ms: int) -> MockKeepa:
    return MockKeepa(scenario.server, DealMarket(scenario.market, scenario.seed, start_ms),
                     scenario.seed, start_ms)


def start(scenario: Scenario, host: str = "127.0.0.1", port: int = 0, *,
          clock: Callable[[], int] = wall_ms, log: TextIO | None = None,
          journal: bool = True) -> Served:
    """Serve `scenario`'s mock on (host, port); port 0 picks a free one.

    `clock` gives the mock's time in epoch ms (tests may pass a fake one);
    `log` gets one line per request; `journal` keeps an `Entry` per request.
    The server runs in a daemon thread until `Served.stop`.
    """
    served = Served("", build_mock(scenario, clock()), threading.Lock(),
                    [] if journal else None)
    handler = type("Handler", (_Handler,), {"served": served, "clock": staticmethod(clock),
                                            "log": log})
    try:
        httpd = _Server((host, port), handler)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    httpd.daemon_threads = True
    bound_host, bound_port = httpd.server_address[:2]
    served.url = f"http://{bound_host}:{bound_port}"
    served.httpd = httpd
    served.thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                     name="sim-serve", daemon=True)
    served.thread.start()
    return served


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A request that raised: its traceback on stderr, as socketserver prints it, with
        any key blanked (a traceback's locals and messages may quote the query)."""
        text = _KEY.sub(r"\1***", traceback.format_exc())
        key = self.RequestHandlerClass.served.mock.settings.key
        sys.stderr.write(text.replace(key, "***") if key else text)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Keepa's clients expect
    served: Served
    clock: Callable[[], int]
    log: TextIO | None

    def do_GET(self) -> None:
        self._answer(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length).decode("utf-8", "replace") if length else None)

    def _answer(self, body: str | None) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        path = url.path.strip("/")
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        served, mock = self.served, self.served.mock
        with served.lock:
            pending = mock.begin(path, params, self.clock(), body)
            arrival = mock.bucket.balance
        if pending.latency_ms:
            time.sleep(pending.latency_ms / 1000)
        with served.lock:
            charged_before = mock.bucket.charged
            status, payload = mock.finish(pending, self.clock())
            if served.journal is not None:
                served.journal.append(Entry(path, status, arrival, mock.bucket.charged
                                            - charged_before, mock.bucket.balance))
        # logged before the answer, so a client holding an answer finds its line
        self._log(path, status, payload, started)
        if status == DROPPED:
            self.close_connection = True
            return
        try:
            self._send(status, payload)
        except (BrokenPipeError, ConnectionResetError):  # the client went away meanwhile
            self.close_connection = True

    def _send(self, status: int, payload: dict | str) -> None:
        if isinstance(payload, str):
            data, kind = payload.encode(), "text/html; charset=utf-8"
        else:
            data, kind = json.dumps(payload, separators=(",", ":")).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if "gzip" in (self.headers.get("Accept-Encoding") or ""):
            data = gzip.compress(data, compresslevel=1)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _log(self, path: str, status: int, payload, started: float) -> None:
        if self.log is None:
            return
        env = payload if isinstance(payload, dict) else {}
        shown = "dropped" if status == DROPPED else str(status)
        self.log.write(f"{time.strftime('%H:%M:%S')} {self.client_address[0]} {self.command} "
                       f"/{path} {shown} consumed={env.get('tokensConsumed', '-')} "
                       f"left={env.get('tokensLeft', '-')} "
                       f"{(time.monotonic() - started) * 1000:.0f}ms\n")
        self.log.flush()

    def log_request(self, code="-", size="-") -> None:
        """Each request is logged once, by `_log`."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's name
        """http.server's own messages (bad request lines), with any key blanked."""
        if self.log is not None:
            self.log.write(_KEY.sub(r"\1***", format % args) + "\n")


@click.command()
@click.option("--refill", type=float, default=5.0, show_default=True,
              help="Refill rate, tokens/minute.")
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True,
              help="Port; 0 picks a free one.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for every draw.")
@click.option("--key", help="The only access key accepted (default: any). Visible in the "
              "process list: prefer --key-file.")
@click.option("--key-file", type=click.Path(dir_okay=False),
              help="File holding the only access key accepted (stripped).")
@click.option("--set", "assignments", multiple=True, metavar="server.KEY=VALUE",
              help="Change the mock: server.KEY or market.KEY (repeatable).")
@click.option("--quiet", is_flag=True, help="No per-request log lines.")
def serve(refill, port, host, seed, key, key_file, assignments, quiet) -> None:
    """Serve the mock Keepa over HTTP on the real clock until Ctrl-C.

    It listens on the loopback address unless --host says otherwise: the mock
    has no authentication worth the name and answers any key by default.
    """
    if key is not None and key_file is not None:
        raise ConfigError("give --key or --key-file, not both")
    if key_file is not None:
        from collector.live.main import read_key_file

        key = read_key_file(key_file)
    collector, world = split_overrides(assignments)
    if collector:
        raise ConfigError(f"serve takes server.KEY and market.KEY only, got '{next(iter(collector))}'")
    scenario = Scenario(seed=seed, server=ServerSettings(rate=refill, key=key)).updated(world)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    served = start(scenario, host, port, log=None if quiet else sys.stderr, journal=False)
    click.echo(f"mock Keepa at {served.url}/ ({refill:g} tokens/min, seed {seed})")
    sys.stdout.flush()
    try:
        while served.thread.is_alive():
            served.thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        served.stop()
    click.echo("stopped", err=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
