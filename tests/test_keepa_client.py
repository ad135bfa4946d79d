"""The community client ``keepa`` (PyPI, unchanged) against `sim serve`.

Only where its HTTP call goes is changed: ``keepa_sync`` calls ``requests.get``
on ``https://api.keepa.com/...``, and the test hands that module a ``requests``
whose ``get`` sends the same request to the served mock. Its parsers, its
waiting on 429 and its clock are its own. The offer latencies are scaled down
(the ``timeout`` is raised to 30 s anyway, above the mock's 20 s worst case)
and the bucket refills continuously, so the 429 part waits about a second a
retry, as the client's own ``time_to_refill`` says.
"""

from __future__ import annotations

import types

import keepa
import keepa.keepa_sync
import pytest
import requests
from keepa.models.backend import DealResponse, Product, Seller

from collector.config import Config
from collector.keepa import NEW, SALES
from collector.pipeline import accepts, buy_box_seller, prices
from sim.keepa import MarketSettings, ServerSettings
from sim.serve import start
from sim.settings import Scenario

KEY = "k" * 64
SELECTION = {"page": 0, "domainId": 1, "priceTypes": [1], "sortType": 3, "dateRange": 0}


def serve(monkeypatch, **server):
    """The mock on a free port, and keepa's module pointed at it."""
    served = start(Scenario(seed=2, server=ServerSettings(key=KEY, latency_scale=0.001, **server),
                            market=MarketSettings(backlog=400, arrivals_per_hour=0)))

    def get(url, params=None, **kwargs):
        assert url.startswith("https://api.keepa.com/")
        return requests.get(served.url + url.removeprefix("https://api.keepa.com"), params,
                            **kwargs)

    monkeypatch.setattr(keepa.keepa_sync, "requests", types.SimpleNamespace(get=get))
    return served


@pytest.fixture
def served(monkeypatch):
    handle = serve(monkeypatch, rate=1200)
    yield handle
    handle.stop()


def asins(served, n: int) -> list[str]:
    return sorted(served.mock.market.deals)[:n]


def test_the_key_check_and_the_token_status(served):
    api = keepa.Keepa(KEY, timeout=30, check_key=True)
    assert api.tokens_left == 72_000 and api.status.refillRate == 1200
    api.update_status()
    assert api.status.timestamp is not None and api.status.refillIn is not None
    with pytest.raises(RuntimeError, match="REQUEST_REJECTED"):
        keepa.Keepa("bad" * 20, check_key=True)


def test_deals_plain_and_typed(served):
    api = keepa.Keepa(KEY, timeout=30, check_key=True)
    deals = api.deals(SELECTION)
    assert len(deals["dr"]) == 150
    assert sum(deals["categoryCount"]) == 150
    assert len(deals["categoryIds"]) == len(deals["categoryNames"]) == len(deals["categoryCount"])
    first = deals["dr"][0]
    deal = served.mock.market.deals[first["asin"]]
    assert first["current"][NEW] == deal.buy and first["current"][SALES] == deal.rank
    assert first["rootCat"] in deals["categoryIds"]
    typed = api.deals({**SELECTION, "page": 1}, typed=True)
    assert isinstance(typed, DealResponse) and len(typed.dr) == 150
    assert all(d.avg[3][NEW] - d.current[NEW] == d.delta[3][NEW] for d in typed.dr)
    narrowed = api.deals({**SELECTION, "includeCategories": [first["rootCat"]]})
    assert {d["rootCat"] for d in narrowed["dr"]} == {first["rootCat"]}
    with pytest.raises(RuntimeError, match="REQUEST_REJECTED"):
        api.deals({**SELECTION, "brand": ["Acme"]})  # a filter the mock does not model


def test_query_with_the_defaults_parses_the_histories(served):
    api = keepa.Keepa(KEY, timeout=30)
    wanted = asins(served, 5)
    products = api.query(wanted)
    assert [p["asin"] for p in products] == wanted
    for product in products:
        deal = served.mock.market.deals[product["asin"]]
        data = product["data"]
        assert data["NEW"][-1] == deal.buy / 100 and data["SALES"][-1] == deal.rank
        assert len(data["NEW"]) == len(data["NEW_time"]) > 5  # 200 days at least, 28 a point
        assert "stats" not in product  # no stats asked for
    with pytest.raises(RuntimeError, match="Possibly invalid ASINs"):
        api.query(["B0NOTKNOWN"])  # as Keepa answers ASINs it does not know


def test_the_prices_the_client_parses_are_the_ones_the_collector_filters_on(served):
    api = keepa.Keepa(KEY, timeout=30)
    config = Config.load("seed-after")
    for product in api.query(asins(served, 20), stats=90, history=False, progress_bar=False):
        sell, buy = prices(product)
        deal = served.mock.market.deals[product["asin"]]
        assert (sell, buy) == (deal.sell, deal.buy)
        parsed = product["stats_parsed"]
        assert parsed["current"]["NEW"] == buy / 100 and parsed["avg90"]["NEW"] == sell / 100
        assert accepts(config, product) == ((sell - buy) / buy >= config.filter_min_roi
                                            and sell >= config.filter_min_sell_cents)
        assert buy_box_seller(product) == deal.seller


def test_query_typed_with_offers_stats_rating_buybox_and_stock_then_the_seller(served):
    api = keepa.Keepa(KEY, timeout=30)
    products = api.query(asins(served, 10), offers=20, stats=90, typed=True, rating=True,
                         buybox=True, stock=True, progress_bar=False)
    assert all(isinstance(p, Product) for p in products) and len(products) == 10
    for p in products:
        assert p.offers and len(p.liveOffersOrder) == len(p.offers) == p.stats.retrievedOfferCount
        assert p.offers[0].sellerId == p.stats.buyBoxSellerId == p.buyBoxSellerIdHistory[-1]
        assert p.stats.buyBoxPrice == p.stats.current[NEW] == p.offers[0].offerCSV[-2]
        assert p.csv[16] and p.csv[17]  # RATING and COUNT_REVIEWS, asked with rating
        assert len(p.csv[18]) % 3 == 0  # BUY_BOX_SHIPPING: time, price, shipping
        assert all(o.stockCSV for o in p.offers)
    seller_id = products[0].stats.buyBoxSellerId
    sellers = api.seller_query(seller_id)
    assert sellers[seller_id]["sellerId"] == seller_id and "trackedSince" in sellers[seller_id]
    typed = api.seller_query(seller_id, typed=True)
    assert isinstance(typed[seller_id], Seller) and typed[seller_id].currentRating > 0


def test_draining_the_bucket_meets_429s_and_the_client_waits_them_out(monkeypatch):
    served = serve(monkeypatch, rate=1200, initial=10, continuous=True)
    try:
        api = keepa.Keepa(KEY, timeout=30)
        wanted = asins(served, 90)
        for batch in (wanted[:30], wanted[30:60], wanted[60:]):  # 30 tokens a call
            got = api.query(batch, history=False, progress_bar=False)
            assert [p["asin"] for p in got] == batch
    finally:
        served.stop()
    statuses = [e.status for e in served.journal if e.path == "product"]
    assert statuses.count(429) >= 2 and statuses.count(200) == 3
    # every 429 came at a balance <= 0, by the server's own books
    assert all(e.balance_at_arrival <= 0 for e in served.journal if e.status == 429)
