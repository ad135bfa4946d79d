"""`sim serve`: the mock over HTTP, in a thread and as a process.

Also the issue's fifth check: a client that behaves like Keepa's Java client
(on 429 sleep ``refillIn`` + 100 ms and send the same request again) gets
every request through, and every 429 it meets comes at a balance <= 0 by the
server's own books.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import urlencode, urlsplit

import pytest

from sim.keepa import MarketSettings, ServerSettings
from sim.serve import start
from sim.settings import Scenario
from sim.transport import wall_ms

SELECTION = {"page": 0, "domainId": 1, "priceTypes": [1], "sortType": 3, "dateRange": 0}


class Client:
    """One keep-alive connection, as Keepa's clients use; gzip asked for."""

    def __init__(self, url: str, key: str = "k"):
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.key = key

    def send(self, path: str, params: dict | None = None, body: str | None = None,
             gzipped: bool = True) -> tuple[int, dict | str | None]:
        """(status, JSON body or text); status 0 and None if the connection dropped."""
        query = urlencode({"key": self.key, **(params or {})}) if self.key else urlencode(params or {})
        headers = {"Accept-Encoding": "gzip"} if gzipped else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request("POST" if body is not None else "GET", f"/{path}?{query}",
                              body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, ConnectionError):
            self.conn.close()
            return 0, None
        if response.getheader("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(data)
        return response.status, data.decode()

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def served():
    log = io.StringIO()
    handle = start(Scenario(seed=1, server=ServerSettings(rate=20, key="k", latency_scale=0.01),
                            market=MarketSettings(backlog=400, arrivals_per_hour=0)), log=log)
    handle.log = log
    yield handle
    handle.stop()


def test_paths_methods_gzip_and_the_envelope(served):
    client = Client(served.url)
    status, body = client.send("token")
    assert status == 200 and body["tokensLeft"] == 1200 and body["refillRate"] == 20
    selection = json.dumps(SELECTION)
    by_get = client.send("deal/", {"selection": selection}, gzipped=False)
    by_post = client.send("deal", body=selection)
    assert by_get[0] == by_post[0] == 200
    assert by_get[1]["deals"] == by_post[1]["deals"] and len(by_get[1]["deals"]["dr"]) == 150
    assert by_post[1]["tokensConsumed"] == 5 and by_post[1]["tokensLeft"] == 1190
    asin = by_get[1]["deals"]["dr"][0]["asin"]
    status, body = client.send("product", {"asin": asin, "stats": "90"})
    assert status == 200 and body["products"][0]["asin"] == asin and body["tokensConsumed"] == 1
    status, body = client.send("seller/", {"seller": "A0000001"})
    assert status == 200 and body["tokensConsumed"] == 1
    assert client.send("nope")[0] == 404
    assert client.send("product", {"asin": asin, "offers": "5"})[0] == 405
    client.close()


def test_a_wrong_key_is_400_with_zeroed_fields_and_no_key_is_ever_logged(served):
    status, body = Client(served.url, key="wrong-key-123").send("token")
    assert status == 400 and body["refillRate"] == 0 and body["tokensLeft"] == 0
    assert body["error"]["type"] == "invalidParameter"
    assert Client(served.url, key="").send("token")[0] == 400
    log = served.log.getvalue()
    assert log.count("\n") == 2 and "/token 400" in log
    assert "wrong-key-123" not in log and "key=" not in log


def test_concurrent_clients_are_all_charged(served):
    """Eight clients at once: every call is admitted and charged; the books add up."""
    results = []

    def one():
        client = Client(served.url)
        results.append(client.send("deal", {"selection": json.dumps(SELECTION)}))
        client.close()

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in results] == [200] * 8
    bucket = served.mock.bucket
    assert bucket.charged == 40
    assert bucket.initial + bucket.credited - bucket.charged == bucket.balance
    assert sum(e.charged for e in served.journal) == 40


def test_faults_reach_the_wire():
    """A 503 comes as an HTML page; a dropped call is charged but gets no answer."""
    handle = start(Scenario(server=ServerSettings(latency=False, errors="503:1")))
    try:
        status, body = Client(handle.url).send("token")
        assert status == 503 and body.startswith("<html>")
    finally:
        handle.stop()
    handle = start(Scenario(server=ServerSettings(latency=False, drop=1.0)))
    try:
        assert Client(handle.url).send("deal", body=json.dumps(SELECTION)) == (0, None)
        assert handle.mock.bucket.charged == 5
    finally:
        handle.stop()


class JavaLikeClient:
    """Keepa's Java client's retry loop (keepa-api.md §5.2): after a 429 sleep
    ``refillIn`` + 100 ms, after a failure back off 100, 300, 700 ms ..., and send
    the same request again, until it is answered."""

    def __init__(self, url: str):
        self.client = Client(url)
        self.met_429 = 0

    def send(self, path: str, params: dict) -> dict:
        delay = 0.1
        while True:
            status, body = self.client.send(path, params)
            if status == 200:
                return body
            if status == 429:
                self.met_429 += 1
                time.sleep(body["refillIn"] / 1000 + 0.1)
            elif status in (0, 503):
                time.sleep(delay)
                delay = min(60.0, delay * 2 + 0.1)
            else:
                raise AssertionError(f"final status {status}: {body}")


def test_a_java_like_client_gets_every_request_through():
    """Four threads, as the Java client's pool, spend a 10-token start on offer
    calls; the bucket goes negative, they meet 429s and wait for the lump ~3 s away."""
    rate = 600
    phase = (wall_ms() + 3000) % 60_000
    scenario = Scenario(seed=5, server=ServerSettings(rate=rate, initial=10, phase_ms=phase,
                                                      latency_scale=0.05),
                        market=MarketSettings(backlog=200, arrivals_per_hour=0))
    handle = start(scenario)
    asins = sorted(handle.mock.market.deals)[:40]
    answered, clients = [], []

    def worker(chunk):
        client = JavaLikeClient(handle.url)
        clients.append(client)
        for asin in chunk:
            body = client.send("product", {"asin": asin, "offers": "20", "stats": "90"})
            answered.append(body["products"][0]["asin"])
        client.client.close()

    try:
        threads = [threading.Thread(target=worker, args=(asins[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        handle.stop()
    assert sorted(answered) == asins
    rejected = [e for e in handle.journal if e.status == 429]
    assert sum(c.met_429 for c in clients) == len(rejected) > 0
    assert all(e.balance_at_arrival <= 0 for e in rejected)
    assert handle.mock.bucket.min_balance < 0  # admitted calls in flight were all charged


def test_serve_as_a_process_prints_its_url_logs_and_stops_cleanly():
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen(
            [sys.executable, "-m", "sim", "serve", "--port", "0", "--refill", "20", "--seed", "3",
             "--key", "s3cret", "--set", "server.latency=false", "--set", "market.backlog=300"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert line.startswith("mock Keepa at http://127.0.0.1:")
            client = Client(line.split()[3], key="s3cret")
            status, body = client.send("token")
            assert status == 200 and body["tokensLeft"] == 1200
            assert client.send("deal", body=json.dumps({**SELECTION, "page": 1}))[1]["deals"]["dr"]
            assert client.send("deal", body=json.dumps({**SELECTION, "page": 2}))[1]["deals"]["dr"] == []
            client.close()
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "s3cret" not in err
        assert err.count(" 200 ") == 3 and "stopped" in err


@pytest.mark.parametrize("args, needle", [
    (["--set", "chunk_size=3"], "server.KEY and market.KEY only"),
    (["--set", "server.nope=1"], "unknown config key 'server.nope'"),
    (["--set", "server.errors=500:2"], "server.errors: share must be between 0 and 1"),
    (["--set", "server.outages=10"], "server.outages: expected START_S+LENGTH_S"),
])
def test_bad_serve_input_is_one_line_and_exit_2(sim, args, needle):
    result = sim("serve", "--port", "0", *args)
    assert result.exit_code == 2
    assert needle in result.stderr and result.stderr.count("\n") == 1
