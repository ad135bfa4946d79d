"""The mock's answers in Keepa's schemas, and the requests it refuses rather than ignores.

Histories agree with the stats they come with, ``history=0`` and ``days`` are
honoured, the selection's filters select, and every field or parameter the
mock does not model is refused the way Keepa refuses one.
"""

from __future__ import annotations

import json

import pytest

from collector.config import ConfigError
from collector.keepa import CSV_TYPES, NEW, SALES
from collector.pipeline import buy_box_seller
from sim.keepa import DealMarket, MarketSettings, MockKeepa, ServerSettings
from sim.keepa.objects import leaf_category, root_category
from sim.settings import Scenario

START = 1_770_508_800_000
SELECTION = {"page": 0, "domainId": 1, "priceTypes": [1], "sortType": 3, "dateRange": 0}
MINUTE_MS = 60_000


@pytest.fixture
def mock():
    market = DealMarket(MarketSettings(backlog=600, arrivals_per_hour=0), 5, START)
    return MockKeepa(ServerSettings(rate=20, latency=False), market, 5, START)


def product(mock, **params):
    asin = sorted(mock.market.deals)[7]
    status, body = mock.handle("product", {"key": "k", "asin": asin, **params}, START)
    assert status == 200, body
    return mock.market.deals[asin], body["products"][0]


def deals(mock, **fields):
    status, body = mock.handle("deal", {"key": "k", "selection": json.dumps(
        {**SELECTION, **fields})}, START)
    return status, body


def test_the_new_price_history_ends_at_the_deal_and_averages_what_stats_say(mock):
    deal, p = product(mock, stats="90", history="1")
    new = p["csv"][NEW]
    times, values = new[::2], new[1::2]
    assert len(p["csv"]) == len(CSV_TYPES) and p["csv"][SALES][-1] == deal.rank
    assert (times[-1], values[-1]) == (p["lastPriceChange"], deal.buy)
    assert times == sorted(times)
    # the time-weighted mean of the 90 days before the deal is the stats' avg90
    end, start = times[-1], times[-1] - 90 * 1440
    weighted = sum(v * (min(t2, end) - max(t1, start)) for t1, t2, v in
                   zip(times, times[1:], values) if t2 > start)
    assert abs(weighted / (end - start) - p["stats"]["avg90"][NEW]) <= 0.02 * deal.sell
    stats = p["stats"]
    assert stats["current"][NEW] == deal.buy and stats["avg90"][NEW] == deal.sell
    assert stats["min"][NEW][1] == min(values) and stats["max"][NEW][1] == max(values)
    assert stats["buyBoxSellerId"] == deal.seller and "buyBoxSellerId" not in p


def test_history_0_nulls_csv_days_trims_it_and_no_stats_param_no_stats(mock):
    _, bare = product(mock, history="0")
    assert bare["csv"] is None and "stats" not in bare
    _, whole = product(mock)
    _, month = product(mock, days="30")
    cutoff = START // MINUTE_MS - 21_564_000 - 30 * 1440
    kept = month["csv"][NEW][::2]
    assert kept[-1] == whole["csv"][NEW][-2] and len(kept) < len(whole["csv"][NEW]) // 2
    assert all(t >= cutoff for t in kept[:-1])


def test_offers_come_with_the_live_order_and_the_buy_box_history(mock):
    deal, p = product(mock, offers="20", stats="90", stock="1")
    assert len(p["offers"]) == p["stats"]["retrievedOfferCount"] == len(p["liveOffersOrder"])
    assert p["offers"][0]["sellerId"] == deal.seller == p["buyBoxSellerIdHistory"][-1]
    assert [o["offerCSV"][1] for o in p["offers"]] == sorted(o["offerCSV"][1] for o in p["offers"])
    assert p["offersSuccessful"] and all("stockCSV" in o for o in p["offers"])
    _, plain = product(mock, stats="90")
    assert "offers" not in plain and plain["stats"]["buyBoxPrice"] == -2


def test_the_deal_response_counts_its_root_categories(mock):
    status, body = deals(mock)
    page = body["deals"]
    assert status == 200 and len(page["dr"]) == 150
    counted = dict(zip(page["categoryIds"], page["categoryCount"]))
    for d in page["dr"]:
        assert set(d) >= {"current", "delta", "deltaPercent", "avg", "rootCat", "categories",
                          "lastUpdate", "creationDate"}
        assert len(d["avg"]) == len(d["delta"]) == 4 and len(d["current"]) == len(CSV_TYPES)
    assert sum(counted.values()) == 150
    assert counted == {c: sum(d["rootCat"] == c for d in page["dr"]) for c in counted}


def test_the_selection_filters_select(mock):
    market = mock.market.deals
    _, body = deals(mock, deltaPercentRange=[40, 100], currentRange=[1000, 5000])
    kept = body["deals"]["dr"]
    assert kept and all(40 <= d["deltaPercent"][0][NEW] <= 100 and 1000 <= d["current"][NEW]
                        <= 5000 for d in kept)
    root = kept[0]["rootCat"]
    _, body = deals(mock, includeCategories=[root])
    assert {d["rootCat"] for d in body["deals"]["dr"]} == {root}
    leaf = leaf_category(market[kept[0]["asin"]])
    _, body = deals(mock, includeCategories=[leaf])
    assert {d["categories"][0] for d in body["deals"]["dr"]} == {leaf}
    _, body = deals(mock, excludeCategories=[root])
    assert body["deals"]["dr"] and root not in {d["rootCat"] for d in body["deals"]["dr"]}
    _, body = deals(mock, excludeCategories=[root], isFilterEnabled=False)
    assert root in {root_category(market[d["asin"]]) for d in body["deals"]["dr"]}
    assert deals(mock, mustHaveAmazonOffer=True)[1]["deals"]["dr"] == []
    _, body = deals(mock, isRisers=True)
    assert all(market[d["asin"]].buy > market[d["asin"]].sell for d in body["deals"]["dr"])


@pytest.mark.parametrize("fields, status, needle", [
    ({"brand": ["Acme"]}, 400, "brand"),
    ({"nonsense": 1}, 400, "unknown field nonsense"),
    ({"priceTypes": [0]}, 400, "New-price deals only"),
    ({"priceTypes": [4]}, 405, "not a deal type"),
    ({"priceTypes": [1, 2]}, 400, "exactly one"),
    ({"deltaPercentRange": [10]}, 400, "[min, max]"),
    ({"minRating": 60}, 405, "minRating"),
    ({"domainId": 7}, 400, "domainId"),
    ({"includeCategories": list(range(501))}, 405, "at most 500"),
])
def test_the_selection_refuses_what_it_does_not_model(mock, fields, status, needle):
    got, body = deals(mock, **fields)
    assert got == status and needle in body["error"]["message"]


@pytest.mark.parametrize("path, params, status, needle", [
    ("product", {"asin": "B000000001", "rental": "1"}, 400, "rental"),
    ("product", {"asin": "B000000001", "stats": "soon"}, 400, "stats"),
    ("product", {"asin": "B000000001", "history": "yes"}, 400, "history"),
    ("product", {"asin": "B000000001", "domain": "7"}, 400, "domain"),
    ("seller", {"seller": "A0000001", "storefront": "1"}, 400, "storefront"),
    ("token", {"page": "1"}, 400, "page"),
])
def test_parameters_the_mock_does_not_model_are_refused(mock, path, params, status, needle):
    got, body = mock.handle(path, {"key": "k", **params}, START)
    assert got == status and needle in body["error"]["message"]
    assert body["tokensConsumed"] == 0


def test_sellers_carry_the_seller_fields(mock):
    status, body = mock.handle("seller", {"key": "k", "seller": "A0000003"}, START)
    seller = body["sellers"]["A0000003"]
    assert status == 200 and seller["sellerId"] == "A0000003"
    assert {"trackedSince", "csv", "currentRating", "positiveRating", "ratingCount"} <= set(seller)


def test_the_collector_reads_the_buy_box_seller_from_stats():
    assert buy_box_seller({"buyBoxSellerId": "A1"}) == ""  # where the mock used to put it
    assert buy_box_seller({"stats": {"buyBoxSellerId": "A1"}}) == "A1"
    assert buy_box_seller({"stats": {"buyBoxSellerId": "-2"}}) == ""


def test_a_bad_server_knob_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="server.drop: must be between 0 and 1"):
        Scenario().updated({"server.drop": "2"})
