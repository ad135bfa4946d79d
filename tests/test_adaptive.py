"""Our own policy, `adaptive` (issue 12): learned prices, tokens spent as they come,
calls queued in turn, and a recent run that reads the list when it pays."""

from __future__ import annotations

import pytest
import simpy

import sim.keepa.server as server_module
from collector.lanes import Slots
from collector.recent import Pace
from sim.engine import simulate
from sim.runtime import SimRuntime
from sim.settings import build


def summary(refill, hours, *assignments, seed=0):
    config, scenario = build("adaptive", None, assignments, refill, hours, seed)
    return simulate(config, scenario).summary


@pytest.mark.parametrize("refill, hours, world", [
    (5, 24, []), (60, 24, []), (1000, 2, ["market.arrivals_per_hour=60000"])])
def test_it_gets_within_five_percent_of_the_bound_without_a_429(refill, hours, world):
    run = summary(refill, hours, *world)
    assert run["http_429"] == 0
    assert run["fraction_of_bound"] >= 0.95, run["fraction_of_bound"]


def test_it_reserves_what_calls_cost_not_the_configs_guesses():
    """The config's guesses reserve 20 tokens an ASIN for a full fetch that costs 5 to
    13; once calls of a kind have answered, the reservations meet the charges."""
    def ratio(*assignments):
        config, scenario = build("adaptive", None, assignments, 60, 6, 0)
        calls = [c for c in simulate(config, scenario).recorder.calls
                 if c.path == "product" and c.status == 200 and c.t > 3600]
        return sum(c.reserved for c in calls) / sum(c.consumed for c in calls)

    assert abs(ratio() - 1) < 0.05
    assert ratio("learn_costs=false") > 1.3


def test_it_follows_prices_that_double_in_the_middle_of_a_run(monkeypatch):
    """After three hours every product costs twice as much: an hour on the reservations
    meet the charges again (within 10 %), and the tokens are still spent without a 429."""
    cost, product, late = server_module.product_cost, server_module.MockKeepa._product, [False]

    def timed(self, q, now_ms):
        late[0] = now_ms - self.start_ms >= 3 * 3_600_000
        return product(self, q, now_ms)

    def dearer(deal, q, **kwargs):
        return cost(deal, q, **kwargs) * (2 if late[0] else 1)

    monkeypatch.setattr(server_module.MockKeepa, "_product", timed)
    monkeypatch.setattr(server_module, "product_cost", dearer)
    config, scenario = build("adaptive", None, ["market.arrivals_per_hour=3000"], 60, 6, 0)
    run = simulate(config, scenario)
    assert run.summary["http_429"] == 0 and run.summary["token_utilization"] > 0.95
    after = [c for c in run.recorder.calls if c.path == "product" and c.status == 200
             and c.t > 4 * 3600]
    reserved, consumed = sum(c.reserved for c in after), sum(c.consumed for c in after)
    assert len(after) > 20 and abs(reserved / consumed - 1) < 0.1


def test_calls_queue_in_turn_by_rank_then_arrival():
    env = simpy.Environment()
    runtime = SimRuntime(env, server=None, start_ms=0, seed=0)
    slots, order = Slots(runtime, 1), []

    async def holder():
        await slots.acquire()
        await runtime.sleep(1)
        slots.release()

    async def waiter(name, rank, delay):
        await runtime.sleep(delay)
        await slots.acquire(rank)
        order.append(name)
        slots.release()

    runtime.spawn(holder())
    for name, rank, delay in (("peek", 2, 0.1), ("full", 1, 0.2), ("seller", 0, 0.3),
                              ("peek2", 2, 0.05)):
        runtime.spawn(waiter(name, rank, delay))
    env.run()
    assert order == ["seller", "full", "peek2", "peek"]


def test_the_recent_run_reads_the_list_once_a_page_of_new_deals_is_due():
    pace = Pace()
    assert pace.due(0, 3600)  # nothing measured yet
    pace.read(0, 10)
    assert pace.due(60, 3600)  # one read: no rate yet
    pace.read(100, 0)  # a cached answer teaches nothing
    assert pace.rate is None
    pace.read(200, 20)  # 20 new deals in 200 s: 0.1 a second
    assert pace.rate == pytest.approx(0.1)
    assert not pace.due(200 + 1400, 3600) and pace.due(200 + 1500, 3600)
    assert pace.due(200 + 100, 50) and not pace.due(200 + 100, 1e9)  # or the longest wait


def test_a_recent_run_goes_on_fetching_while_one_lane_reads_the_list():
    """A big plan reads the list again every 20 s while listed deals wait; the listing
    (here tens of pages) is one lane's work, and the other lanes' full fetches go on
    meanwhile instead of draining first."""
    config, scenario = build("adaptive", None, ["market.arrivals_per_hour=60000"], 1000, 0.5, 0)
    calls = simulate(config, scenario).recorder.calls
    pages = sorted(c.t for c in calls if c.task == "recent" and c.path == "deal")
    listings, start = [], pages[0]  # pages less than 5 s apart belong to one listing
    for before, after in zip(pages, pages[1:]):
        if after - before > 5:
            listings.append((start, before))
            start = after
    long = [(a, b) for a, b in listings if b - a > 10]
    fetched = [c.t for c in calls if c.task == "recent" and c.path == "product"]
    during = sum(any(a < t < b for t in fetched) for a, b in long)
    assert long and during > len(long) / 4  # the old run drained its lanes first: none


def test_batches_are_what_a_minute_of_refill_buys_at_the_learned_price():
    from collector.batching import fit
    from collector.callmodel import kind
    from collector.client import product_params
    from collector.pipeline import full_query
    from collector.presets import preset_config
    from collector.tokens import TokenManager

    config = preset_config("adaptive")
    tokens = TokenManager(config.updated({"refill_rate": 20}))
    assert fit(tokens, 100, full_query, 8.0) == 2  # 20 tokens a minute at the guess of 8 an ASIN
    call = kind("product", product_params((), **full_query(config)))
    tokens.calls.learn(call, 4, 60.0, 5.0)
    assert fit(tokens, 100, full_query, 8.0) == 1  # learned: 15 an ASIN
    tokens.rate = 4000
    assert fit(tokens, None, full_query, 8.0) == 100 and fit(tokens, 30, full_query, 8.0) == 30
    unsized = TokenManager(config.updated({"batch_refill_s": "none"}))
    assert fit(unsized, None, full_query, 8.0) is None


@pytest.mark.parametrize("refill, off", [(20, "yield_turn=false"), (60, "recent_read_share=none")])
def test_new_deals_are_fresher_for_the_same_deals(refill, off):
    """Where the market binds, letting new deals' calls ask before the backlog's, and
    reading the list at a share of the refill, store as many deals, sooner."""
    on, without = summary(refill, 24), summary(refill, 24, off)
    assert on["deals_stored"] >= without["deals_stored"]
    assert on["freshness_p95_s"] < 0.8 * without["freshness_p95_s"]


def test_small_batches_keep_the_backlog_going_when_new_deals_ask_first():
    """At 5 tokens/min, calls of 100 ASINs wait long for their tokens and new deals' calls
    overtake them: batches of a minute's refill store more deals."""
    sized, fixed = summary(5, 24), summary(5, 24, "batch_refill_s=none")
    assert sized["deals_stored"] > 1.02 * fixed["deals_stored"]
    assert sized["fraction_of_bound"] >= 0.95
