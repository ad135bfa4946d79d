"""Security hardening (issue 14, item 7): where the key goes, who may read what.

`sim serve` listens on loopback by default and takes its key from a file, so
the key is in no process list; `collector live` takes it from a file or the
environment. A live run against `sim serve`, with faults so that failures are
written out too, leaves the key in no output, log, database file (main, -wal,
-shm), status report or command line; the database and the log are 0600. A
failed HTTP call's error names no key, not even in its exception's context.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import httpx
import pytest

from collector.live.http import HttpTransport
from collector.live.log import LiveLog
from collector.live.redact import Redactor
from collector.live.sqlite import SQLiteStorage
from collector.runtime import Request, TransportError
from test_live_serve import wait_for

KEY = "Vb3nQ8sLx2Tf6Rk9Wm4Zc7Hp"  # distinctive: no 6 characters of it occur by chance
COLLECTOR = [sys.executable, "-c", "from collector.cli import main; main()"]
FAST = ["--set", "chunk_overhead_s=0.05", "--set", "commit_overhead_s=0",
        "--set", "dispatch_overhead_s=0", "--set", "min_interval_s=0.05",
        "--set", "refill_rate=600"]


def pieces(key: str = KEY, width: int = 6) -> set[bytes]:
    return {key[i:i + width].encode() for i in range(len(key) - width + 1)}


def leaked(data: bytes | str, key: str = KEY) -> bool:
    """Whether `data` holds any 6 consecutive characters of `key`."""
    data = data.encode() if isinstance(data, str) else data
    return any(piece in data for piece in pieces(key))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")


@contextmanager
def sim_serve(tmp_path: Path, *args: str):
    """``sim serve`` on a free port, its stderr in a file; yields (URL, process)."""
    with open(tmp_path / "serve.err", "a") as err:
        proc = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--port", "0", *args],
                                stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://[\d.]+:\d+", line)
        assert match, f"sim serve said {line!r}"
        yield match.group(0), proc
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=10)[0]
        with open(tmp_path / "serve.out", "a") as out:
            out.write(line + rest)


def get(url: str) -> int:
    try:
        with urlopen(url, timeout=10) as reply:
            return reply.status
    except HTTPError as exc:
        return exc.code


def test_sim_serve_listens_on_loopback_and_reads_its_key_from_a_file(tmp_path):
    key_file = tmp_path / "serve.key"
    key_file.write_text(f"  {KEY}\n")
    with sim_serve(tmp_path, "--key-file", str(key_file)) as (url, proc):
        assert url.startswith("http://127.0.0.1:")
        assert not leaked(cmdline(proc.pid))
        assert get(f"{url}/token?key={KEY}") == 200  # the file's key, stripped
        assert get(f"{url}/token?key=other") == 400
        assert get(f"{url}/token?key=%20{KEY}%0A") == 400
    assert not leaked((tmp_path / "serve.err").read_bytes())


@pytest.mark.parametrize("content, args, needle", [
    (KEY, ["--key", "x"], "give --key or --key-file, not both"),
    ("  \n", [], "is empty"),
    (None, [], "cannot read key file"),
])
def test_bad_serve_key_input_is_one_line_and_exit_2(sim, tmp_path, content, args, needle):
    key_file = tmp_path / "serve.key"
    if content is not None:
        key_file.write_text(content)
    result = sim("serve", "--port", "0", "--key-file", str(key_file), *args)
    assert result.exit_code == 2
    assert needle in result.stderr and result.stderr.count("\n") == 1
    assert not leaked(result.stderr)


def wait_for_deals(db: Path, proc: subprocess.Popen) -> None:
    """Until the collector has stored a deal."""
    wait_for(db, proc, lambda store: store.count() > 0, "collector stored nothing", tries=600)


def status(db: Path, *args: str) -> str:
    done = subprocess.run([*COLLECTOR, "status", "--db", str(db), *args], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_a_live_run_against_sim_serve_leaves_the_key_nowhere(tmp_path):
    key_file = tmp_path / "keepa.key"
    key_file.write_text(KEY + "\n")
    db, log = tmp_path / "deals.sqlite", tmp_path / "collector.log"
    common = ["--db", str(db), *FAST, "--log-file", str(log), "--status-every", "1"]
    seen: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    faults = ["--refill", "600", "--key-file", str(key_file), "--set", "server.latency_scale=0.02",
              "--set", "server.errors=500:0.05,503:0.05", "--set", "server.drop=0.05"]
    with sim_serve(tmp_path, *faults) as (url, server):
        with open(tmp_path / "live.out", "w") as out, open(tmp_path / "live.err", "w") as err:
            live = subprocess.Popen([*COLLECTOR, "live", "--api-url", url, "--key-file",
                                     str(key_file), *common, "--set", "backoff_base_s=0.05",
                                     "--set", "backfill_period_s=0.2", "--set",
                                     "recent_period_s=0.2"], stdout=out, stderr=err)
        wait_for_deals(db, live)
        time.sleep(2)
        seen["status while running"] = (status(db) + status(db, "--json")).encode()
        for proc, name in ((server, "serve"), (live, "live")):
            seen[f"{name} command line"] = cmdline(proc.pid)
        for end in ("", "-wal", "-shm"):  # all three exist while the collector runs
            path = Path(f"{db}{end}")
            seen[f"db{end} while running"] = path.read_bytes()
            modes[f"db{end}"] = mode(path)
        live.send_signal(signal.SIGTERM)
        assert live.wait(30) == 0
    # the key from the environment, refused by a server that wants another
    with sim_serve(tmp_path, "--refill", "600", "--key", "not-the-collectors-key") as (url, _):
        env = {**os.environ, "KEEPA_API_KEY": KEY}
        rejected = subprocess.run([*COLLECTOR, "live", "--api-url", url, "--log-json", *common],
                                  capture_output=True, env=env, timeout=60)
        assert rejected.returncode == 1
        seen["rejected run's output"] = rejected.stdout + rejected.stderr
    seen["status after"] = (status(db) + status(db, "--json")).encode()
    files = [p for p in tmp_path.iterdir() if p.is_file() and p != key_file]
    assert {"deals.sqlite", "collector.log", "live.err", "serve.err", "serve.out"} <= {
        p.name for p in files}
    seen.update((p.name, p.read_bytes()) for p in files)
    assert [name for name, data in seen.items() if leaked(data)] == []
    assert b"Traceback" not in b"".join(seen.values())
    assert b"HTTP 400" in seen["rejected run's output"]
    err = seen["live.err"].decode()
    assert "status" in err and "stopped by SIGTERM" in err
    assert modes == {"db": 0o600, "db-wal": 0o600, "db-shm": 0o600}
    assert mode(db) == mode(log) == 0o600
    # and what the simulated collector's config could carry, `sim tune`'s TOML, has no key
    toml = tmp_path / "tune.toml"
    tuned = subprocess.run([sys.executable, "-m", "sim", "tune", "--hours", "0.25", "--budget",
                            "1", "--seeds", "1", "--confirm", "0", "--workers", "1", "--set",
                            f"server.key={KEY}", "--constraint", "http_429<=1e9", "--out",
                            str(toml)], capture_output=True, timeout=120)
    assert tuned.returncode == 0, tuned.stderr
    assert toml.read_text().startswith("# Found by sim tune")
    assert not leaked(toml.read_bytes()) and not leaked(tuned.stdout + tuned.stderr)


def test_the_database_and_log_are_owner_only_even_under_a_lax_umask(tmp_path):
    old = os.umask(0)
    try:
        fresh = SQLiteStorage(tmp_path / "fresh.sqlite")
        fresh.begin_run("http://mock", 1, {})
        LiveLog(Redactor(KEY), path=str(tmp_path / "live.log")).close()
        made = {p.name: mode(p) for p in tmp_path.iterdir()}
        fresh.close()
    finally:
        os.umask(old)
    assert made == {"fresh.sqlite": 0o600, "fresh.sqlite-wal": 0o600,
                    "fresh.sqlite-shm": 0o600, "live.log": 0o600}
    # a database an older version left world-readable is tightened when next opened
    older = tmp_path / "older.sqlite"
    SQLiteStorage(older).close()
    older.chmod(0o644)
    Path(f"{older}-wal").write_bytes(b"")
    Path(f"{older}-wal").chmod(0o664)
    again = SQLiteStorage(older)
    try:
        assert mode(older) == mode(Path(f"{older}-wal")) == mode(Path(f"{older}-shm")) == 0o600
    finally:
        again.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failed_http_call_names_no_key_even_in_its_context():
    """A key with characters that are percent-encoded in a query; one failure whose
    library message quotes the whole request URL, and a real refused connection."""
    key = "Vb3nQ8+sLx2Tf6/Rk9Wm4=Zc7Hp"
    redact = Redactor(key)

    async def calls():
        http = HttpTransport(f"http://127.0.0.1:{free_port()}", key, redact)

        def quoting(method, url, params):  # in place of `AsyncClient.stream`
            request = http.client.build_request(method, url, params=params)
            raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

        try:
            with pytest.raises(TransportError) as refused:
                await http.send(Request("token"))
            http.client.stream = quoting
            with pytest.raises(TransportError) as quoted:
                await http.send(Request("deal", {"selection": "{}"}))
        finally:
            await http.close()
        return refused.value, quoted.value

    refused, quoted = asyncio.run(calls())
    assert "ConnectError" in str(refused)
    assert "/deal?key=***&selection=" in str(quoted)
    segments = [s for s in re.split(r"[^A-Za-z0-9]", key) if len(s) >= 5]
    for exc in (refused, quoted):
        text = "".join(traceback.format_exception(exc))
        assert not any(s in text for s in segments), text
        assert exc.__cause__ is None and exc.__context__ is None


def test_the_mock_blanks_the_key_in_a_failed_requests_traceback(tmp_path, capfd):
    """A request that raises inside `sim serve` prints its traceback, keyless."""
    from sim.serve import start
    from sim.settings import Scenario
    from sim.keepa import ServerSettings

    served = start(Scenario(server=ServerSettings(key=KEY)), journal=False)
    try:
        def explode(path, params, now, body):
            raise RuntimeError(f"cannot serve {params}")

        served.mock.begin = explode
        with pytest.raises(Exception):
            urlopen(f"{served.url}/token?key={KEY}", timeout=10)
    finally:
        served.stop()
    err = capfd.readouterr().err
    assert "RuntimeError: cannot serve {'key': '***'}" in err
    assert not leaked(err)
