"""The shape of Keepa's answers as the collector reads them: one reader an endpoint.

`TokenManager.flaw` checks an answer's envelope (the token fields); these check
its payload. Each takes the body of a 200 (a JSON object) and returns what the
client's endpoint method returns (the page's deals, the products, the sellers),
or raises `Malformed` naming the first field that is not of the shape Keepa's
own structs give it (keepacom/api_backend ``structs/Response.java``,
``DealResponse.java``, ``Deal.java``, ``Product.java``, ``Stats.java``). The
client takes such an answer for a failed one, as a 200 whose body is not a JSON
object (`KeepaClient.call`): one line, the backoff, bounded retries. Nothing in
it is dropped or repaired: a page without one of its deals would move the
backfiller's cursor past that deal for good.

Only what the collector reads is checked, and only as far as it reads it, since
this runs on every answer (100 products, 150 deals): ``deals`` (a DealResponse
object) and its ``dr`` (a list), each Deal's ``asin`` and ``lastUpdate``;
``products`` (a list), each Product's ``asin``, ``title`` and ``stats``, and of
the Stats object ``buyBoxSellerId`` and the one entry (``NEW``) of ``current``
and ``avg90`` the collector's prices are; ``sellers`` (an object; no Seller is
read). An object, list or string that is absent or null is what Keepa's struct
leaves it, null: no deals, no products, no title, no stats, no price (-1, as a
row too short to hold one), no buy-box seller. Every integer is a Java ``int``
in those structs, so null, a bool, a float (NaN too) or a number beyond 32 bits
is not one. Any other field, known or not, is left alone.

A Deal's ``lastUpdate`` may be absent: Deal.java declares it ``int lastUpdate =
0``, so Keepa's own client reads an absent one as 0, and so does the collector
(older than any watermark). An ASIN must be a non-empty string: the collector
keys, claims and stores deals by it.
"""

from __future__ import annotations

from typing import Any

from .keepa import NEW

INT_MIN, INT_MAX = -2 ** 31, 2 ** 31 - 1  # a Java int, as Keepa's structs hold integers
SHOWN = 40  # characters of a bad value a message shows at most


class Malformed(ValueError):
    """A payload not of the shape Keepa's structs give; the message names the field."""


def deal_page(body: dict[str, Any]) -> list[dict]:
    """The deals of a /deal answer (``deals.dr``), up to 150."""
    response = body.get("deals")
    if response is None:
        return []
    if type(response) is not dict:
        raise _wrong("deals", response, "an object")
    deals = _items(response.get("dr"), "deals.dr")
    for i, deal in enumerate(deals):
        stamp = deal.get("lastUpdate", 0)
        if type(stamp) is not int or not INT_MIN <= stamp <= INT_MAX:
            raise _integer(f"deals.dr[{i}].lastUpdate", stamp)
    return deals


def products(body: dict[str, Any]) -> list[dict]:
    """The products of a /product answer (Keepa leaves out the ASINs it does not know)."""
    found = _items(body.get("products"), "products")
    for i, product in enumerate(found):
        title = product.get("title")
        if title is not None and type(title) is not str:
            raise _wrong(f"products[{i}].title", title, "a string")
        stats = product.get("stats")
        if stats is None:
            continue
        if type(stats) is not dict:
            raise _wrong(f"products[{i}].stats", stats, "an object")
        for name in ("current", "avg90"):
            row = stats.get(name)
            if row is None:
                continue
            if type(row) is not list:
                raise _wrong(f"products[{i}].stats.{name}", row, "a list")
            if len(row) > NEW:
                price = row[NEW]
                if type(price) is not int or not INT_MIN <= price <= INT_MAX:
                    raise _integer(f"products[{i}].stats.{name}[{NEW}]", price)
        seller = stats.get("buyBoxSellerId")
        if seller is not None and type(seller) is not str:
            raise _wrong(f"products[{i}].stats.buyBoxSellerId", seller, "a string")
    return found


def sellers(body: dict[str, Any]) -> dict:
    """The sellers of a /seller answer, by id (Keepa leaves out the ids it does not know)."""
    found = body.get("sellers")
    if found is None:
        return {}
    if type(found) is not dict:
        raise _wrong("sellers", found, "an object")
    return found


def _items(found: Any, path: str) -> list[dict]:
    """`found`, a list of Deal or Product objects at `path`, each with its ASIN; [] if null."""
    if found is None:
        return []
    if type(found) is not list:
        raise _wrong(path, found, "a list")
    for i, item in enumerate(found):
        if type(item) is not dict:
            raise _wrong(f"{path}[{i}]", item, "an object")
        asin = item.get("asin")
        if type(asin) is not str or not asin:
            raise _asin(f"{path}[{i}]", item)
    return found


# -- the messages (only on a bad answer) ---------------------------------------------
def _wrong(path: str, value: Any, shape: str) -> Malformed:
    shown = repr(value)
    if len(shown) > SHOWN:
        shown = shown[:SHOWN - 3] + "..."
    return Malformed(f"{path} is {shown}, not {shape}")


def _asin(path: str, item: dict) -> Malformed:
    if "asin" not in item:
        return Malformed(f"{path} has no asin")
    return _wrong(f"{path}.asin", item["asin"], "a non-empty string")


def _integer(path: str, value: Any) -> Malformed:
    if type(value) is int:
        return _wrong(path, value, "a 32-bit integer")
    return _wrong(path, value, "an integer")
