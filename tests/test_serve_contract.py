"""Contract: one request sequence, sent to the mock in process and to `sim serve`,
gets the same statuses, bodies and token accounting.

Both sides read the same fake clock, so even the timestamps agree; the
sequence crosses refill lumps, runs the bucket below zero (429s), and with
faults on meets HTML 500s and dropped connections at the same calls.
"""

from __future__ import annotations

import json

import pytest
from test_serve import Client

from sim.keepa import MarketSettings, ServerSettings
from sim.keepa.server import DROPPED
from sim.serve import build_mock, start
from sim.settings import Scenario

START_MS = 1_770_508_800_000
SELECTION = {"domainId": 1, "priceTypes": [1], "sortType": 1, "dateRange": 0}


def sequence(asins: list[str]) -> list[tuple[int, str, dict, str | None]]:
    """(ms to wait first, path, params, POST body)."""
    product = {"asin": ",".join(asins[:3]), "offers": "20", "stats": "90", "rating": "1"}
    steps = [
        (0, "token", {}, None),
        (1_000, "deal", {"selection": json.dumps({**SELECTION, "page": 0})}, None),
        (500, "deal/", {}, json.dumps({**SELECTION, "page": 1})),
        (200, "product", product, None),
        (200, "product/", {**product, "asin": asins[0] + ",B0NOTKNOWN"}, None),
        (100, "product", {"asin": asins[4], "buybox": "1", "update": "0"}, None),
        (100, "seller", {"seller": "A0000001,Z9"}, None),
        (100, "nope", {}, None),
        (100, "product", {"asin": asins[5], "offers": "7"}, None),
        (100, "deal", {"selection": "{not json"}, None),
        (100, "token", {"key": "wrong"}, None),
    ]
    steps += [(300, "product", {"asin": a, "offers": "40"}, None) for a in asins[6:16]]
    steps += [(61_000, "token", {}, None), (0, "deal", {}, json.dumps({**SELECTION, "page": 2}))]
    steps += [(40_000, "product", {"asin": a, "offers": "20"}, None) for a in asins[16:22]]
    return steps


@pytest.mark.parametrize("faults", [{}, {"errors": "500:0.15", "drop": 0.15}],
                         ids=["plain", "faults"])
def test_in_process_and_http_agree(faults):
    scenario = Scenario(seed=4, server=ServerSettings(rate=20, initial=40, latency_scale=0.002,
                                                      **faults),
                        market=MarketSettings(backlog=500, arrivals_per_hour=120))
    now = [START_MS]
    served = start(scenario, clock=lambda: now[0])
    local = build_mock(scenario, START_MS)
    client = Client(served.url)
    asins = sorted(local.market.deals)
    over_http, in_process = [], []
    try:
        for wait, path, params, body in sequence(asins):
            now[0] += wait
            params = {"key": "k", **params}
            client.key = params.pop("key")
            over_http.append(client.send(path, params, body))
            status, answer = local.handle(path, {**params, "key": client.key}, now[0], body)
            in_process.append((0, None) if status == DROPPED else (status, answer))
    finally:
        client.close()
        served.stop()
    assert over_http == in_process
    statuses = {status for status, _ in in_process}
    assert {200, 400, 404, 405, 429} <= statuses
    if faults:
        assert {0, 500} <= statuses
    remote, mine = served.mock, local
    for name in ("balance", "charged", "credited", "generated", "min_balance"):
        assert getattr(remote.bucket, name) == getattr(mine.bucket, name), name
    assert remote.http_429 == mine.http_429 > 0
    assert remote.charged_by_path == mine.charged_by_path
