"""The bound (issue 11, item 3): no run beats it, each of its three resources can bind,
and its token ceiling is the formula in sim/bound.py's docstring."""

from __future__ import annotations

import pytest

from sim.engine import simulate
from sim.executors import Serial
from sim.grid import parse_axis
from sim.settings import build
from sim.store import Store
from sim.sweep import Spec, resolve_base, run_sweep


def summary(preset: str, refill: float, hours: float, *assignments: str) -> dict:
    config, scenario = build(preset, None, assignments, refill, hours, 0)
    return simulate(config, scenario).summary


@pytest.mark.parametrize("world", [[], ["market.backlog=400", "market.arrivals_per_hour=300"],
                                   ["server.initial=0", "market.offers_fresh_share=1"]])
def test_no_run_of_a_brute_force_sweep_beats_the_bound(tmp_path, world):
    axes = tuple(parse_axis(text) for text in (
        "max_in_flight=1,4", "batch_size+chunk_size=1,20", "peek_offers=0,20",
        "min_interval_s=0,60"))
    base = resolve_base("fixed", None, ["chunk_overhead_s=0", "commit_overhead_s=0", *world])
    spec = Spec(base, axes, (5.0, 60.0, 1000.0), 2.0, (0,))
    run_sweep(spec, Store(tmp_path / "sweep"), Serial(), progress=False)
    table = Store(tmp_path / "sweep").table()
    assert len(table) == 48
    assert table["fraction_of_bound"].max() <= 1.0, table.loc[
        table["fraction_of_bound"].idxmax(), ["refill", "fraction_of_bound", "bound_by"]]
    assert set(table["bound_by"]) >= {"tokens"}


def test_each_resource_binds_somewhere():
    """The README's three cases: a small plan is bound by tokens; a big plan on the
    default market runs out of deals; one call at a time of one ASIN cannot keep up
    with a big plan on a big market."""
    tokens = summary("fixed", 5, 24)
    market = summary("fixed", 600, 24)
    latency = summary("fixed", 4000, 1, "market.arrivals_per_hour=100000", "batch_size=1",
                      "chunk_size=1")
    assert (tokens["bound_by"], market["bound_by"], latency["bound_by"]) == (
        "tokens", "market", "latency")
    assert market["fraction_of_bound"] > 0.95  # it stores what the market offers, nearly all
    for run in (tokens, market, latency):
        assert run["bound_deals_per_hour"] == min(
            run[f"bound_{name}_per_hour"] for name in ("market", "tokens", "latency"))
        assert 0 < run["fraction_of_bound"] <= 1


def test_the_token_ceiling_is_the_formula():
    """Every offer fetch costs a flat 5 (fresh offers) and no rating is fresh, so the
    fewest tokens a stored deal costs are (5/150 + min(1 + 5 s, 5)) / s + u, s the
    share of the deals the run examined that it stored, u its distinct sellers per
    deal stored."""
    config, scenario = build("fixed", None, [
        "market.offers_fresh_share=1", "market.rating_fresh_share=0", "server.latency=false",
        "server.phase_ms=30000"], 20, 3, 0)
    done = simulate(config, scenario)
    run, stored = done.summary, done.collector.storage.deals.values()
    share = run["deals_stored"] / run["deals_processed"]
    sellers = len({deal.seller_id for deal in stored}) / len(stored)
    assert sellers < 1  # deals share sellers: one lookup serves them all
    per_deal = (5 / 150 + min(1 + 5 * share, 5)) / share + sellers
    assert run["bound_tokens_per_deal"] == pytest.approx(per_deal)
    supply = 1200 + 20 * 60 * 3 + max(0, -run["final_balance"])
    assert run["bound_tokens_per_hour"] == pytest.approx(supply / per_deal / 3)
