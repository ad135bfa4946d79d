"""The mock's cost rules and status codes, one table row each (keepa-api.md §1, §4, §6).

Every row runs on a fresh mock with a full bucket, so the charge the row
expects is the whole change in the server's books.
"""

from __future__ import annotations

import json
import re

import pytest

from sim.keepa import DealMarket, MarketSettings, MockKeepa, ServerSettings

START = 1_770_508_800_000
HOUR = 3_600_000
ENVELOPE = {"timestamp", "tokensLeft", "refillIn", "refillRate", "tokenFlowReduction",
            "tokensConsumed", "processingTimeInMs"}
MARKET = MarketSettings(backlog=300, arrivals_per_hour=0)


def mock(market: MarketSettings = MARKET, **server) -> MockKeepa:
    return MockKeepa(ServerSettings(rate=20, **server), DealMarket(market, 2, START), 2, START)


def picks(m: MockKeepa) -> dict[str, str]:
    """ASINs with the properties a row needs."""
    def first(pred):
        return next(d.asin for d in sorted(m.market.deals.values(), key=lambda d: d.asin)
                    if pred(d))

    return {
        "one": first(lambda d: d.offer_pages == 1 and not d.offers_fresh and not d.rating_fresh),
        "two": first(lambda d: d.offer_pages == 2 and not d.offers_fresh and not d.rating_fresh),
        "fresh": first(lambda d: d.offer_pages == 1 and d.offers_fresh and not d.rating_fresh),
        "rated": first(lambda d: d.offer_pages == 1 and not d.offers_fresh and d.rating_fresh),
        "new": first(lambda d: START - d.created_ms < HOUR and not d.rating_fresh),
        "old": first(lambda d: START - d.created_ms > 2 * HOUR and not d.rating_fresh),
    }


def selection(**fields) -> str:
    return json.dumps({"domainId": 1, "priceTypes": [1], "sortType": 3, "dateRange": 0, **fields})


def fill(params: dict[str, str], asins: dict[str, str]) -> dict[str, str]:
    """Put the picked ASINs in for ``<one>``, ``<two>`` ..."""
    return {k: re.sub(r"<(\w+)>", lambda m: asins[m.group(1)], v) for k, v in params.items()}


def call(m: MockKeepa, path: str, params: dict, at: int = START + 1000, body=None):
    return m.handle(path, {"key": "k", **params}, at, body)


ROWS = [
    # /product: 1 per found product; offers replace it; extras
    ("product base", "product", {"asin": "<one>"}, 200, 1),
    ("found two, one unknown", "product", {"asin": "<one>,<two>,B0NOTKNOWN"}, 200, 2),
    ("unknown only", "product", {"asin": "B0NOTKNOWN"}, 200, 0),
    ("unknown with update=-1", "product", {"asin": "B0NOTKNOWN", "update": "-1"}, 200, 0),
    ("stats, history, days free", "product",
     {"asin": "<one>", "stats": "90", "history": "1", "days": "365"}, 200, 1),
    ("offers: one page", "product", {"asin": "<one>", "offers": "20"}, 200, 6),
    ("offers: two pages", "product", {"asin": "<two>", "offers": "20"}, 200, 12),
    ("offers=100 finds two pages", "product", {"asin": "<two>", "offers": "100"}, 200, 12),
    ("offers for one and two pages", "product", {"asin": "<one>,<two>", "offers": "20"}, 200, 18),
    ("offers fresh: flat 5", "product", {"asin": "<fresh>", "offers": "20"}, 200, 5),
    ("offers update=0: live", "product", {"asin": "<fresh>", "offers": "20", "update": "0"},
     200, 6),
    ("offers update=-1: stored", "product", {"asin": "<two>", "offers": "20", "update": "-1"},
     200, 5),
    ("rating refreshed lately +1", "product", {"asin": "<rated>", "rating": "1"}, 200, 2),
    ("rating not refreshed +0", "product", {"asin": "<one>", "rating": "1"}, 200, 1),
    ("buybox +2", "product", {"asin": "<one>", "buybox": "1"}, 200, 3),
    ("buybox ignored with offers", "product", {"asin": "<one>", "buybox": "1", "offers": "20"},
     200, 6),
    ("stock +2 with offers", "product", {"asin": "<one>", "stock": "1", "offers": "20"}, 200, 8),
    ("stock alone", "product", {"asin": "<one>", "stock": "1"}, 200, 1),
    ("update=0 on a copy < 1 h old +1", "product", {"asin": "<new>", "update": "0"}, 200, 2),
    ("update=0 on an older copy", "product", {"asin": "<old>", "update": "0"}, 200, 1),
    ("101 ASINs", "product", {"asin": ",".join(f"B{i:09d}" for i in range(101))}, 405, 0),
    ("offers below 20", "product", {"asin": "<one>", "offers": "10"}, 405, 0),
    ("offers above 100", "product", {"asin": "<one>", "offers": "110"}, 405, 0),
    ("update below -1", "product", {"asin": "<one>", "update": "-2"}, 405, 0),
    ("days 0", "product", {"asin": "<one>", "days": "0"}, 405, 0),
    ("offers not a number", "product", {"asin": "<one>", "offers": "x"}, 400, 0),
    ("no asin", "product", {}, 400, 0),
    ("code lookup", "product", {"code": "0123456789012"}, 400, 0),
    # /deal: 5 a page, whatever it holds
    ("deal page", "deal", {"selection": selection(page=0)}, 200, 5),
    ("deal page past the end", "deal", {"selection": selection(page=66)}, 200, 5),
    ("deal page out of reach", "deal", {"selection": selection(page=67)}, 405, 0),
    ("deal negative page", "deal", {"selection": selection(page=-1)}, 405, 0),
    ("sortType 5", "deal", {"selection": selection(sortType=5)}, 405, 0),
    ("sortType -1", "deal", {"selection": selection(sortType=-1)}, 405, 0),
    ("dateRange 4", "deal", {"selection": selection(dateRange=4)}, 405, 0),
    ("no selection", "deal", {}, 400, 0),
    ("selection not JSON", "deal", {"selection": "{page"}, 400, 0),
    ("selection not an object", "deal", {"selection": "[1]"}, 400, 0),
    # /seller: 1 per seller found
    ("seller found", "seller", {"seller": "A0000001"}, 200, 1),
    ("sellers found and not", "seller", {"seller": "A0000001,A0000002,A9999999,X"}, 200, 2),
    ("seller unknown", "seller", {"seller": "A0000500"}, 200, 0),
    ("101 sellers", "seller", {"seller": ",".join(f"A{i:07d}" for i in range(101))}, 405, 0),
    ("no seller", "seller", {}, 400, 0),
    # /token and unknown paths
    ("token", "token", {}, 200, 0),
    ("token, trailing slash", "token/", {}, 200, 0),
    ("unknown path", "query", {}, 404, 0),
]


@pytest.mark.parametrize("name, path, params, status, cost", ROWS, ids=[r[0] for r in ROWS])
def test_cost_and_status(name, path, params, status, cost):
    m = mock()
    asins = picks(m)
    got, body = call(m, path, fill(params, asins))
    assert got == status
    assert ENVELOPE <= body.keys()
    assert body["tokensConsumed"] == cost == m.bucket.charged
    assert body["tokensLeft"] == (0 if status == 404 else 1200 - cost)
    unknown_seller = path == "seller" and status == 200 and not all(
        m.market.seller(s) for s in params["seller"].split(","))
    assert ("error" in body) == (status != 200 or unknown_seller)


def test_products_not_found_are_left_out():
    m = mock()
    asins = picks(m)
    assert "products" not in call(m, "product", {"asin": "B0NOTKNOWN"})[1]
    found = call(m, "product", {"asin": f"B0NOTKNOWN,{asins['one']}"})[1]["products"]
    assert [p["asin"] for p in found] == [asins["one"]]


@pytest.mark.parametrize("settings, status, kind", [
    ({"key": "right"}, 400, "invalidParameter"),
    ({"expired": True}, 402, "paymentRequired"),
])
def test_key_problems_zero_the_token_fields(settings, status, kind):
    got, body = call(mock(**settings), "token", {})
    assert got == status and body["error"]["type"] == kind
    assert body["tokensLeft"] == body["refillRate"] == body["refillIn"] == 0


def test_a_missing_key_is_400_and_an_unknown_path_404_both_zeroed():
    m = mock()
    assert m.handle("token", {}, START)[0] == 400
    status, body = call(m, "finder", {})
    assert status == 404 and body["tokensLeft"] == 0 and body["refillRate"] == 0


def test_429_at_zero_charges_nothing_token_answers_and_bad_parameters_come_first():
    m = mock(initial=0)
    status, body = call(m, "deal", {"selection": selection()})
    assert status == 429 and body["tokensConsumed"] == 0 and body["tokensLeft"] == 0
    assert body["refillRate"] == 20 and 0 < body["refillIn"] <= 60_000
    assert call(m, "token", {})[0] == 200
    assert call(m, "product", {"asin": "B0X", "offers": "5"})[0] == 405
    assert m.bucket.charged == 0 and m.http_429 == 1


def test_admitted_calls_in_flight_are_all_charged():
    m = mock(initial=3, phase_ms=(START + 30_000) % 60_000)
    a = m.begin("deal", {"key": "k", "selection": selection(page=0)}, START)
    b = m.begin("deal", {"key": "k", "selection": selection(page=1)}, START)
    assert (a.status, b.status) == (200, 200)
    m.finish(a, START + 500)
    _, body = m.finish(b, START + 900)
    assert body["tokensLeft"] == -7 and m.bucket.charged == 10


def test_offers_stay_fresh_for_update_hours_from_the_last_live_fetch():
    m = mock()
    asin = picks(m)["one"]

    def cost(at, **extra):
        return call(m, "product", {"asin": asin, "offers": "20", **extra}, at)[1]["tokensConsumed"]

    assert cost(START) == 6
    assert cost(START + 50 * 60_000) == 5  # within the hour: Keepa's stored offers
    assert cost(START + 70 * 60_000) == 6  # an hour after the live fetch, not after the 5
    assert cost(START + 130 * 60_000 + 1, update="2") == 5
    assert cost(START + 131 * 60_000, update="0") == 6


def test_update_0_costs_one_more_while_a_request_refresh_is_under_an_hour_old():
    m = mock()
    asin = picks(m)["old"]
    assert call(m, "product", {"asin": asin}, START)[1]["tokensConsumed"] == 1  # refreshes it
    assert call(m, "product", {"asin": asin, "update": "0"}, START + 1000)[1]["tokensConsumed"] == 2


def test_offers_max_asins_as_the_java_client_documents():
    m = mock(offers_max_asins=20)
    asins = ",".join(sorted(m.market.deals)[:21])
    assert call(m, "product", {"asin": asins, "offers": "20"})[0] == 405
    assert call(m, "product", {"asin": asins})[0] == 200


def test_deal_paging_walks_the_whole_list_and_stops_short():
    m = mock()
    seen, page = [], 0
    while True:
        dr = call(m, "deal", {"selection": selection(page=page)})[1]["deals"]["dr"]
        seen += [d["asin"] for d in dr]
        if len(dr) < 150:
            break
        page += 1
    assert page == 2 and len(dr) == 0 and sorted(seen) == sorted(m.market.deals)
    assert m.bucket.charged == 15


def test_an_empty_deal_page_can_be_free():
    m = mock(deal_empty_free=True)
    assert call(m, "deal", {"selection": selection(page=2)})[1]["tokensConsumed"] == 0
    assert call(m, "deal", {"selection": selection(page=1)})[1]["tokensConsumed"] == 5


def test_get_and_post_selection_agree_and_the_result_is_cached_120_s():
    m = mock(MarketSettings(backlog=50, arrivals_per_hour=600))
    newest = selection(sortType=1)

    def top(at, **kw):
        return call(m, "deal", kw, at)[1]["deals"]["dr"][0]["asin"]

    first = top(START, selection=newest)
    assert call(m, "deal", {}, START + 100_000, body=newest)[1]["deals"]["dr"][0]["asin"] == first
    assert len(m.market.deals) > 50  # deals arrived meanwhile, unseen for 120 s
    later = top(START + 120_000, selection=newest)
    assert later != first and m.market.deals[later].created_ms > START


@pytest.mark.parametrize("sort, key, descending", [
    (1, lambda d: d.last_update, True),
    (3, lambda d: d.rank, False),
    (-3, lambda d: d.rank, True),
    (2, lambda d: d.sell - d.buy, True),
    (-2, lambda d: d.sell - d.buy, False),
    (4, lambda d: (d.sell - d.buy) / d.sell, True),
])
def test_sort_types(sort, key, descending):
    m = mock()
    dr = call(m, "deal", {"selection": selection(sortType=sort)})[1]["deals"]["dr"]
    values = [key(m.market.deals[d["asin"]]) for d in dr]
    assert values == sorted(values, reverse=descending)


def test_a_rough_newest_first_order_strays_by_at_most_twice_the_roughness():
    m = mock(MarketSettings(backlog=300, arrivals_per_hour=0, roughness_min=30))
    dr = call(m, "deal", {"selection": selection(sortType=1)})[1]["deals"]["dr"]
    updates = [d["lastUpdate"] for d in dr]
    assert updates != sorted(updates, reverse=True)
    assert all(later - earlier <= 60 for earlier, later in zip(updates, updates[1:]))


@pytest.mark.parametrize("path, params, low, high", [
    ("token", {}, 20, 80),
    ("deal", {"selection": selection()}, 300, 1200),
    ("product", {"asin": "<one>"}, 120, 420),
    ("product", {"asin": "<one>", "offers": "20"}, 2000, 20000),
    ("seller", {"seller": "A0000001"}, 100, 400),
])
def test_processing_time_per_endpoint_is_seeded_and_scaled(path, params, low, high):
    def times(**settings):
        m = mock(**settings)
        filled = fill(params, picks(m))
        return [call(m, path, filled, START + i * 1000)[1]["processingTimeInMs"]
                for i in range(5)]

    plain = times()
    assert all(low <= t <= high for t in plain) and len(set(plain)) > 1
    assert times() == plain
    assert times(latency_scale=0.5) == [round(t * 0.5) for t in plain]
    assert times(latency=False) == [0] * 5


def test_flow_reduction_lowers_the_net_rate_and_is_reported():
    m = mock(flow_reduction=4.5, initial=0, phase_ms=0)
    body = call(m, "token", {}, START + 60_000)[1]
    assert body["tokensLeft"] == 15.5 and body["refillRate"] == 20
    assert body["tokenFlowReduction"] == 4.5 and m.bucket.cap == 60 * 15.5
    net = call(mock(flow_reduction=4.5, report_net_rate=True), "token", {})[1]
    assert net["refillRate"] == 15.5
