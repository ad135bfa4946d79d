"""The mock Keepa server: validation, admission, costs, latency, envelope.

A request is handled in two steps, as the real server must (keepa-api.md
§3.4): `MockKeepa.begin` validates it, admits it if the balance is > 0
(else 429, nothing charged), builds the answer and its *actual* cost and
draws the latency; `MockKeepa.finish`, called when that latency has passed,
charges the cost and writes the envelope. Admitted calls in flight are all
charged, so the balance can go negative.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from .bucket import TokenBucket
from .market import DealMarket

DEAL_PAGE = 150
DEAL_REACH = 10_000
DEAL_CACHE_MS = 120_000
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class ServerSettings:
    """The server's knobs (``--set server.KEY=VALUE``); `rate` comes from ``--refill``."""

    rate: float = 5.0
    initial: float | None = None  # starting balance; None = full (60 x rate)
    phase_ms: int | None = None  # refill phase within the minute; None = drawn from the seed
    continuous: bool = False  # refill continuously instead of one lump a minute
    flow_reduction: float = 0.0  # tokenFlowReduction, tokens/minute
    latency: bool = True  # simulate processing time (offers calls take seconds)
    key: str | None = None  # the only accepted key; None accepts any


@dataclass
class Pending:
    """A request between `begin` and `finish`."""

    status: int
    payload: dict[str, Any]
    cost: float = 0.0
    latency_ms: int = 0
    reserved: float = 0.0
    zeroed: bool = False
    path: str = ""
    params: dict[str, str] = field(default_factory=dict)


class Reject(Exception):
    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind = status, kind


class MockKeepa:
    def __init__(self, settings: ServerSettings, market: DealMarket, seed: int, start_ms: int):
        self.settings = settings
        self.market = market
        self.latency_rng = random.Random(f"{seed}/latency")
        phase = settings.phase_ms
        if phase is None:
            phase = random.Random(f"{seed}/phase").randrange(60_000)
        self.bucket = TokenBucket(settings.rate, start_ms, phase_ms=phase,
                                  initial=settings.initial, continuous=settings.continuous,
                                  flow_reduction=settings.flow_reduction)
        self.offers_fetched: dict[str, int] = {}
        self._deal_cache: dict[str, tuple[int, list[str]]] = {}
        self.http_429 = 0

    # -- the two steps -----------------------------------------------------------------
    def begin(self, path: str, params: dict[str, str], now_ms: int,
              body: str | None = None) -> Pending:
        path = path.strip("/")
        self.market.advance(now_ms)
        self.bucket.advance(now_ms)
        if self.settings.key is not None and params.get("key") != self.settings.key:
            return Pending(400, _error("invalidParameter", "You used an invalid parameter for "
                                       "this API call."), zeroed=True, path=path)
        handler = getattr(self, f"_{path}", None) if path in ENDPOINTS else None
        if handler is None:
            return Pending(404, _error("notFound", f"unknown path /{path}"), path=path)
        if path != "token" and self.bucket.balance <= 0:
            self.http_429 += 1
            return Pending(429, _error("notEnoughToken", "Not enough tokens."),
                           latency_ms=self._latency(5, 20), path=path)
        try:
            payload, cost, latency = handler(params, now_ms, body)
        except Reject as exc:
            return Pending(exc.status, _error(exc.kind, str(exc)), path=path)
        return Pending(200, payload, cost, latency, path=path, params=params)

    def finish(self, pending: Pending, now_ms: int) -> tuple[int, dict[str, Any]]:
        if pending.cost:
            self.bucket.charge(pending.cost, now_ms)
        else:
            self.bucket.advance(now_ms)
        return pending.status, {**self.envelope(now_ms, pending), **pending.payload}

    def handle(self, path: str, params: dict[str, str], now_ms: int,
               body: str | None = None) -> tuple[int, dict[str, Any]]:
        """Both steps at one instant (no latency); for tests and quick looks."""
        return self.finish(self.begin(path, params, now_ms, body), now_ms)

    def envelope(self, now_ms: int, pending: Pending) -> dict[str, Any]:
        if pending.zeroed:
            return {"timestamp": now_ms, "tokensLeft": 0, "refillIn": 0, "refillRate": 0,
                    "tokenFlowReduction": 0.0, "tokensConsumed": 0, "processingTimeInMs": 0}
        b = self.bucket
        return {"timestamp": now_ms, "tokensLeft": _int(b.balance),
                "refillIn": b.refill_in_ms(now_ms), "refillRate": _int(b.rate),
                "tokenFlowReduction": float(b.flow_reduction),
                "tokensConsumed": _int(pending.cost), "processingTimeInMs": pending.latency_ms}

    # -- endpoints: each returns (payload, actual cost, latency ms) ----------------------
    def _token(self, params, now_ms, body):
        return {}, 0.0, self._latency(20, 80)

    def _deal(self, params, now_ms, body):
        raw = body if body is not None else params.get("selection")
        if not raw:
            raise Reject(400, "invalidParameter", "selection is required")
        try:
            selection = json.loads(raw)
            page = int(selection.get("page", 0))
            sort_type = int(selection.get("sortType", 0))
        except (ValueError, TypeError, AttributeError):
            raise Reject(400, "invalidParameter", "selection is not valid JSON") from None
        if page < 0:
            raise Reject(405, "parameterOutOfRange", "page must be >= 0")
        key = json.dumps({k: v for k, v in selection.items() if k != "page"}, sort_keys=True)
        cached = self._deal_cache.get(key)
        if cached is None or now_ms - cached[0] >= DEAL_CACHE_MS:
            cached = (now_ms, self.market.listing(sort_type)[:DEAL_REACH])
            self._deal_cache[key] = cached
        asins = cached[1][page * DEAL_PAGE:(page + 1) * DEAL_PAGE]
        deals = [self.market.deals[a].deal_object() for a in asins]
        return {"deals": {"dr": deals}}, 5.0, self._latency(300, 1200)

    def _product(self, params, now_ms, body):
        asins = [a for a in params.get("asin", "").split(",") if a]
        if not asins:
            raise Reject(400, "invalidParameter", "asin is required")
        if len(asins) > 100:
            raise Reject(405, "parameterOutOfRange", "at most 100 ASINs per call")
        offers = _int_param(params, "offers", 0)
        if offers and not 20 <= offers <= 100:
            raise Reject(405, "parameterOutOfRange", "offers must be between 20 and 100")
        rating = params.get("rating") == "1"
        update_ms = _int_param(params, "update", 1) * HOUR_MS
        products, cost = [], 0.0
        for asin in asins:
            deal = self.market.deals.get(asin)
            if deal is None:
                continue
            products.append(deal.product_object())
            if offers:
                last = self.offers_fetched.get(asin)
                fresh = deal.offers_fresh or (last is not None and now_ms - last < update_ms)
                cost += 5 if fresh else 6 * min(deal.offer_pages, offers // 10)
                self.offers_fetched[asin] = now_ms
            else:
                cost += 1
            if rating and deal.rating_fresh:
                cost += 1
        latency = (self._latency(2000, 20000, mean=5000) if offers
                   else self._latency(100, 400) + 20 * len(asins))
        return {"products": products}, cost, latency

    def _seller(self, params, now_ms, body):
        ids = [s for s in params.get("seller", "").split(",") if s]
        if not ids:
            raise Reject(400, "invalidParameter", "seller is required")
        if len(ids) > 100:
            raise Reject(405, "parameterOutOfRange", "at most 100 sellers per call")
        sellers = {s: {"sellerId": s, "sellerName": f"Seller {s}"} for s in ids}
        return {"sellers": sellers}, float(len(sellers)), self._latency(100, 400)

    def _latency(self, low: int, high: int, mean: int | None = None) -> int:
        if not self.settings.latency:
            return 0
        if mean is None:
            return self.latency_rng.randint(low, high)
        return min(high, low + round(self.latency_rng.expovariate(1 / (mean - low))))


ENDPOINTS = ("token", "deal", "product", "seller")


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "details": ""}}


def _int(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(x, 3)


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    try:
        return int(params.get(name, default))
    except ValueError:
        raise Reject(400, "invalidParameter", f"{name} must be an integer") from None

