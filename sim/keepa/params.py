"""The query parameters each endpoint takes, parsed; Keepa's error for any other.

An endpoint's parameters outside its set are refused with 400
``invalidParameter`` (as Keepa refuses an invalid one) rather than ignored,
so a client never believes the mock honoured what it does not model. The
products have no videos nor A+ content, so ``videos`` and ``aplus`` are
answered (with none); ``code``, ``rental`` or a seller's ``storefront`` are not.
"""

from __future__ import annotations

from collector.keepa import DOMAINS

from .errors import Reject

# the query parameters each endpoint takes; any other is refused, not ignored
TOKEN_PARAMS = frozenset({"key", "domain"})
DEAL_PARAMS = frozenset({"key", "domain", "selection"})
PRODUCT_PARAMS = frozenset({"key", "domain", "asin", "code", "stats", "history", "days",
                            "update", "offers", "only-live-offers", "rating", "buybox", "stock",
                            "videos", "aplus"})  # the products have no videos nor A+ content
SELLER_PARAMS = frozenset({"key", "domain", "seller"})


def check(params: dict[str, str], allowed: frozenset[str]) -> None:
    """Refuse a parameter the endpoint does not take here (400, as Keepa refuses an
    invalid one), and a ``domain`` that is not Keepa's."""
    for name in params:
        if name not in allowed:
            raise Reject(400, "invalidParameter",
                         f"{name} is not a parameter the mock models for this endpoint")
    if "domain" in params and int_param(params, "domain", 1) not in DOMAINS:
        raise Reject(400, "invalidParameter", "domain is not a Keepa domain")


def flag(params: dict[str, str], name: str, default: bool = False) -> bool:
    """A 0/1 parameter; absent: `default`."""
    if name not in params:
        return default
    if params[name] not in ("0", "1"):
        raise Reject(400, "invalidParameter", f"{name} must be 0 or 1")
    return params[name] == "1"


def stats_param(params: dict[str, str]) -> bool:
    """``stats``: a number of days, or a from,to interval in epoch ms (Keepa also takes
    ISO dates there; the mock's averages are the same whatever the interval)."""
    text = params.get("stats")
    if text is None:
        return False
    parts = text.split(",")
    try:
        values = [int(v) for v in parts]
    except ValueError:
        raise Reject(400, "invalidParameter",
                     "stats must be days, or from,to in epoch ms") from None
    if len(values) == 1 and values[0] > 0 or len(values) == 2 and 0 <= values[0] < values[1]:
        return True
    raise Reject(405, "parameterOutOfRange", "stats must be days > 0, or from,to with from < to")


def int_param(params: dict[str, str], name: str, default: int) -> int:
    try:
        return int(params.get(name, default))
    except ValueError:
        raise Reject(400, "invalidParameter", f"{name} must be an integer") from None
