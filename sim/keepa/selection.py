"""The ``/deal`` selection: parsed, checked, and made a filter over the market's deals.

Every field of Keepa's deal query (``structs/DealRequest.java``, keepa-api.md
§1.1) is either applied to the mock's deals or refused the way Keepa refuses
a request: 405 ``parameterOutOfRange`` for a value outside what Keepa allows,
400 ``invalidParameter`` for a field Keepa does not know, a malformed value,
or a field the mock does not model. None is silently ignored.

What the mock's deals are, and so what the filters see: changes of the New
price (``priceTypes`` [1]) of products updated in the last 12 hours, each in
one root category and one leaf (`objects`), rated 3 to 5 stars, with reviews;
all in stock, with no Amazon offer, no Prime-exclusive or warehouse offer, no
variations and no adult products; the current price is the lowest offer. So
``mustHaveAmazonOffer`` keeps nothing and ``mustNotHaveAmazonOffer`` keeps
everything, and so on. Products carry no brand, colour or other attribute, so
the attribute filters (``brand``, ``color``, ...) are refused when non-empty.

As on Keepa, ``isFilterEnabled: false`` switches the filter options off and
``isRangeEnabled: false`` the range options; absent, they are on. An absent
``priceTypes`` is taken as [1] and an absent ``domainId`` as the mock's one
market, where Keepa requires both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from collector.keepa import (DEAL_PAGE_SIZE, DEAL_PRICE_TYPES, DEAL_REACH, DEAL_SORTS, DOMAINS,
                             NEW)

from .errors import Reject
from .objects import is_highest, is_lowest, leaf_category, rating, root_category

if TYPE_CHECKING:
    from .market import Deal

DEAL_LAST_PAGE = DEAL_REACH // DEAL_PAGE_SIZE  # page 66 holds results 9,900 to 9,999
MAX_CATEGORIES = 500
RANGES = ("currentRange", "deltaRange", "deltaPercentRange", "deltaLastRange", "salesRankRange")
ATTRIBUTES = ("material", "type", "manufacturer", "brand", "productGroup", "model", "color",
              "size", "unitType", "scent", "itemForm", "pattern", "style", "itemTypeKeyword",
              "targetAudienceKeyword", "edition", "format", "author", "binding", "languages",
              "brandStoreName", "brandStoreUrlName", "websiteDisplayGroup",
              "websiteDisplayGroupName", "salesRankDisplayGroup")


def _never(deal: Deal) -> bool:
    return False


# flag -> what keeps a deal when the flag is true (None: every deal has the property)
FLAGS: dict[str, Callable[[Deal], bool] | None] = {
    "isLowest": is_lowest, "isLowest90": is_lowest, "isHighest": is_highest,
    "isLowestOffer": None, "isRisers": lambda d: d.buy > d.sell, "hasReviews": None,
    "filterErotic": None, "singleVariation": None, "mustNotHaveAmazonOffer": None,
    "isOutOfStock": _never, "isBackInStock": _never, "isPrimeExclusive": _never,
    "mustHaveAmazonOffer": _never}
SWITCHES = ("isFilterEnabled", "isRangeEnabled")
OTHER_FIELDS = ("page", "domainId", "priceTypes", "dateRange", "sortType", "minRating",
                "titleSearch", "includeCategories", "excludeCategories", "warehouseConditions")
KNOWN = frozenset((*RANGES, *ATTRIBUTES, *FLAGS, *SWITCHES, *OTHER_FIELDS))


class Selection(NamedTuple):
    cache_key: str  # the selection without its page: one cached result per query
    page: int
    sort: int
    keep: Callable[[Deal], bool] | None  # None: the selection filters nothing


def parse_selection(raw: str | None) -> Selection:
    """The selection JSON of a ``/deal`` call (query string or POST body), or `Reject`."""
    if not raw:
        raise Reject(400, "invalidParameter", "selection is required")
    try:
        selection = json.loads(raw)
    except ValueError:
        raise Reject(400, "invalidParameter", "selection is not valid JSON") from None
    if not isinstance(selection, dict):
        raise Reject(400, "invalidParameter", "selection is not a JSON object")
    unknown = sorted(set(selection) - KNOWN)
    if unknown:
        raise Reject(400, "invalidParameter", f"selection: unknown field {unknown[0]}")
    page, sort = _int(selection, "page", 0), _int(selection, "sortType", 0)
    if not 0 <= page <= DEAL_LAST_PAGE:
        raise Reject(405, "parameterOutOfRange", f"page must be between 0 and {DEAL_LAST_PAGE}")
    if sort not in DEAL_SORTS:
        raise Reject(405, "parameterOutOfRange", "sortType must be 1 to 4, or -2 to -4")
    if not 0 <= _int(selection, "dateRange", 0) <= 3:
        raise Reject(405, "parameterOutOfRange", "dateRange must be between 0 and 3")
    if "domainId" in selection and _int(selection, "domainId", 1) not in DOMAINS:
        raise Reject(400, "invalidParameter", "domainId is not a Keepa domain")
    _price_type(selection)
    keep: list[Callable[[Deal], bool]] = []
    if selection.get("isRangeEnabled") is not False:
        keep += _ranges(selection)
    if selection.get("isFilterEnabled") is not False:
        keep += _filters(selection)
    key = json.dumps({k: v for k, v in selection.items() if k != "page"}, sort_keys=True)
    return Selection(key, page, sort, _all(keep))


def _price_type(selection: dict) -> None:
    types = selection.get("priceTypes", [NEW])
    types = [types] if isinstance(types, int) else types  # Keepa takes a bare int too
    if not isinstance(types, list) or len(types) != 1 or not isinstance(types[0], int):
        raise Reject(400, "invalidParameter", "priceTypes must hold exactly one price type")
    if types[0] not in DEAL_PRICE_TYPES:
        raise Reject(405, "parameterOutOfRange", f"priceTypes: {types[0]} is not a deal type")
    if types[0] != NEW:
        raise Reject(400, "invalidParameter",
                     f"priceTypes: the mock models New-price deals only ([{NEW}])")


def _ranges(selection: dict) -> list[Callable[[Deal], bool]]:
    """currentRange on the New price, deltaRange and deltaLastRange on the drop in cents,
    deltaPercentRange on it in percent, salesRankRange on the rank (-1: no upper bound)."""
    out = []
    for name in RANGES:
        bounds = selection.get(name)
        if bounds is None:
            continue
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(isinstance(b, int) for b in bounds)):
            raise Reject(400, "invalidParameter", f"{name} must be [min, max] integers")
        low, high = bounds
        if name == "salesRankRange" and high == -1:
            high = 2**31 - 1
        value = _RANGE_VALUE[name]
        out.append(lambda d, value=value, low=low, high=high: low <= value(d) <= high)
    return out


_RANGE_VALUE: dict[str, Callable[[Deal], int]] = {
    "currentRange": lambda d: d.buy, "deltaRange": lambda d: d.sell - d.buy,
    "deltaLastRange": lambda d: d.sell - d.buy,
    "deltaPercentRange": lambda d: round((d.sell - d.buy) * 100 / d.sell),
    "salesRankRange": lambda d: d.rank}


def _filters(selection: dict) -> list[Callable[[Deal], bool]]:
    out = []
    for name in ATTRIBUTES:
        if selection.get(name):
            raise Reject(400, "invalidParameter",
                         f"{name}: the mock's products carry no {name}; leave it out")
    for name, keeps in FLAGS.items():
        flag = selection.get(name, False)
        if not isinstance(flag, bool):
            raise Reject(400, "invalidParameter", f"{name} must be true or false")
        if flag and keeps is not None:
            out.append(keeps)
    if selection.get("warehouseConditions"):
        out.append(_never)  # no warehouse offers
    for name, included in (("includeCategories", True), ("excludeCategories", False)):
        ids = selection.get(name)
        if ids is None:
            continue
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise Reject(400, "invalidParameter", f"{name} must be a list of category ids")
        if len(ids) > MAX_CATEGORIES:
            raise Reject(405, "parameterOutOfRange", f"{name}: at most {MAX_CATEGORIES} ids")
        if ids:
            out.append(_in_categories(frozenset(ids), included))
    min_rating = _int(selection, "minRating", -1)
    if not -1 <= min_rating <= 50:
        raise Reject(405, "parameterOutOfRange", "minRating must be -1 (off) or 0 to 50")
    if min_rating > 0:
        out.append(lambda d: rating(d) >= min_rating)
    title = selection.get("titleSearch")
    if title is not None:
        if not isinstance(title, str):
            raise Reject(400, "invalidParameter", "titleSearch must be a string")
        words = title.lower().split()
        if len(words) > 50:
            raise Reject(405, "parameterOutOfRange", "titleSearch: at most 50 keywords")
        if words:
            out.append(lambda d: all(w in f"product {d.asin.lower()}" for w in words))
    return out


def _in_categories(ids: frozenset[int], included: bool) -> Callable[[Deal], bool]:
    """A product is in a category if it is its root or its leaf (Keepa: listed directly
    in a sub-category, or anywhere under a root one)."""
    def keep(deal: Deal) -> bool:
        return (root_category(deal) in ids or leaf_category(deal) in ids) == included
    return keep


def _all(checks: list[Callable[[Deal], bool]]) -> Callable[[Deal], bool] | None:
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda deal: all(check(deal) for check in checks)


def _int(selection: dict[str, Any], name: str, default: int) -> int:
    value = selection.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Reject(400, "invalidParameter", f"{name} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise Reject(400, "invalidParameter", f"{name} must be an integer") from None
