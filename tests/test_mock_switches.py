"""`sim run` switches each realism feature of the mock on and off with ``--set``,
and its summary reports reserved against actual tokens per endpoint."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from sim.cli import main
from sim.keepa import MarketSettings, ServerSettings
from sim.settings import build


def run(*args: str, hours: str = "4") -> dict:
    result = CliRunner().invoke(main, ["run", "--json", "--hours", hours, *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    summary.pop("wall_s")
    return summary


@pytest.fixture(scope="module")
def plain() -> dict:
    return run()


EXAMPLES = {bool: "true", int: "3", float: "0.5", str: "500:0.1"}


@pytest.mark.parametrize("prefix, cls", [("server", ServerSettings), ("market", MarketSettings)])
def test_every_world_knob_reaches_the_run(prefix, cls):
    for f in dataclasses.fields(cls):
        if f.name == "rate":
            continue
        kind = next(t for t in (bool, int, float, str) if t.__name__ in str(f.type))
        value = {"outages": "60+30", "latency": "false"}.get(f.name, EXAMPLES[kind])
        _, scenario = build(None, None, [f"{prefix}.{f.name}={value}"], 5.0, 1.0, 0)
        assert getattr(getattr(scenario, prefix), f.name) not in (None, f.default), f.name


def sets(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


SWITCHES = [
    ("continuous refill", sets("server.continuous=true"),
     lambda b, s: s["final_balance"] != round(s["final_balance"]) and s != b),
    ("expiry, continuous", sets("server.expiry=true", "server.continuous=true"),
     lambda b, s: s["final_balance"] != round(s["final_balance"])),
    ("flow reduction", sets("server.flow_reduction=2"),
     lambda b, s: s["tokens_generated"] == 3 * 60 * 4 and b["tokens_generated"] == 5 * 60 * 4),
    ("refillRate reported net", sets("server.flow_reduction=2", "server.report_net_rate=true"),
     lambda b, s: s["tokens_generated"] == 720 and s["tokens_reserved"] != b["tokens_reserved"]),
    ("no processing time", sets("server.latency=false"), lambda b, s: s != b),
    # bound by tokens, the collector spends slow calls' time waiting on them, not polling
    ("slow processing", sets("server.latency_scale=20"),
     lambda b, s: s["token_calls"] < 0.8 * b["token_calls"]),
    ("server errors", sets("server.errors=500:0.05,503:0.05"),
     lambda b, s: s["call_failures"] > 10 and b["call_failures"] == 0),
    ("outage", sets("server.outages=600+600"),
     lambda b, s: s["call_failures"] > 10 and b["call_failures"] == 0),
    ("dropped connections", sets("server.drop=0.05"),
     lambda b, s: s["call_failures"] > 0 and s["tokens_consumed"] > sum(
         e["tokens_consumed"] for e in s["endpoints"].values())),
    ("slow responses", sets("server.slow=0.3", "server.slow_s=120"),
     lambda b, s: s["token_calls"] < 0.8 * b["token_calls"]),
    ("failed offer fetches", sets("server.offers_fail=0.5"),
     lambda b, s: per_call(s, "product") < 0.8 * per_call(b, "product")),
    ("noisy refillRate", sets("server.rate_noise=3"), lambda b, s: s != b),
    ("expired key", sets("server.expired=true"),
     lambda b, s: s["deals_stored"] == 0 and s["tokens_consumed"] == 0),
    ("another key", sets("server.key=other"), lambda b, s: s["deals_stored"] == 0),
    ("20 ASINs with offers, strictly", sets("server.offers_max_asins=2"),
     lambda b, s: s["deals_stored"] == 0 and sum(t["errors"] for t in s["tasks"].values())),
    ("small backlog", sets("market.backlog=40"),  # the backfill reaches the end and starts over
     lambda b, s: s["tasks"]["backfill"]["runs"] > b["tasks"]["backfill"]["runs"]),
    ("no arrivals", sets("market.arrivals_per_hour=0"), lambda b, s: s["new_deals_listed"] == 0),
    ("more arrivals", sets("market.arrivals_per_hour=120"),
     lambda b, s: s["new_deals_listed"] > 3 * b["new_deals_listed"]),
    ("nothing survives the peek", sets("market.survivor_share=0", "peek_filter=true"),
     lambda b, s: s["deals_stored"] == 0 and s["deals_processed"] > 0),
]


def test_a_rough_order_reaches_a_newest_first_run():
    """The roughness has a stream of its own and moves only sortType 1's order, so
    it shows in a run whose recent task reads that order (seed-after reads 4)."""
    newest = sets("recent_sort=1")
    assert run(*newest, *sets("market.roughness_min=60")) != run(*newest)


def per_call(s, path):
    e = s["endpoints"][path]
    return e["tokens_consumed"] / e["calls"]


@pytest.mark.parametrize("name, args, check", SWITCHES, ids=[s[0] for s in SWITCHES])
def test_switch(plain, name, args, check):
    assert check(plain, run(*args))


def test_initial_balance_and_the_books(plain):
    """What was there, less what is left or lost, is what was charged."""
    empty = run(*sets("server.initial=0"))
    assert (plain["initial_balance"], empty["initial_balance"]) == (300, 0)
    for s in (plain, empty):
        assert s["tokens_consumed"] == pytest.approx(s["initial_balance"] + s["tokens_generated"]
                                                     - s["tokens_lost_to_cap"] - s["final_balance"])
    assert empty["tokens_consumed"] < plain["tokens_consumed"] - 200


def test_lump_expiry_runs_exactly_like_the_cap(plain):
    """With lumps, per-token expiry (oldest spent first) is the cap (see test_mock_bucket)."""
    assert run(*sets("server.expiry=true")) == plain


def test_the_lockout_fault_meets_a_client_that_retries_at_once():
    """reactive retries as the balance says; under the opt-in lockout the balance
    is positive and every retry meets another 429."""
    free = run("--preset", "reactive", hours="2")
    locked = run("--preset", "reactive", *sets("server.lockout_below=20", "server.lockout_s=600"),
                 hours="2")
    assert locked["http_429"] > 10 * free["http_429"]


def test_reserved_against_actual_per_endpoint(plain):
    s = plain
    endpoints = s["endpoints"]
    assert set(endpoints) == {"deal", "product", "seller", "token"}
    assert sum(e["tokens_reserved"] for e in endpoints.values()) == s["tokens_reserved"]
    assert sum(e["tokens_consumed"] for e in endpoints.values()) == s["tokens_consumed"]
    product = endpoints["product"]
    assert product["tokens_reserved"] > product["tokens_consumed"] > 0
    assert endpoints["token"]["tokens_consumed"] == 0
