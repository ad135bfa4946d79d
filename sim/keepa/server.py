"""The mock Keepa server: validation, admission, costs, latency, envelope.

A request is handled in two steps, as the real server must (keepa-api.md
§3.4): `MockKeepa.begin` checks the key and the parameters (400, 402, 404,
405), admits the call if the balance is > 0 (else 429, nothing charged; ``/token``
is always admitted, as Keepa answers it on an empty bucket),
builds the answer and its *actual* cost and draws the latency;
`MockKeepa.finish`, called when that latency has passed, charges the cost and
writes the envelope. Admitted calls in flight are all charged, so the balance
can go negative. The costs follow keepa-api.md §1 and §6.4; where the
reference marks a behaviour as inferred, a `ServerSettings` knob chooses it.

`finish` answers ``(status, body)``: body is the JSON object, or a string for
a non-JSON error page; status `DROPPED` means the connection broke after the
server did (and charged) the work, so the caller must not deliver an answer.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from collector.keepa import DEAL_PAGE_SIZE, DEAL_REACH, ENVELOPE_FIELDS

from .bucket import TokenBucket
from .costs import DEAL_PAGE_COST, LATENCY_MS, offers_fresh, product_cost
from .errors import Reject, SettingsError
from .faults import Faults, FaultSettings, error_page, parse_errors, parse_windows
from .market import Deal, DealMarket
from .objects import Objects, deal_response, seller_object
from .order import Snapshot
from .params import (DEAL_PARAMS, PRODUCT_PARAMS, SELLER_PARAMS, TOKEN_PARAMS, check, flag,
                     int_param, stats_param)
from .selection import parse_selection

DEAL_CACHE_MS = 120_000
HOUR_MS = 3_600_000
DROPPED = 0  # status of a call whose connection broke: no HTTP answer at all


@dataclass(frozen=True)
class ServerSettings:
    """The server's knobs (``--set server.KEY=VALUE``); `rate` comes from ``--refill``."""

    rate: float = 5.0
    # -- the bucket (keepa-api.md §3)
    initial: float | None = None  # starting balance; None = full (60 x net rate)
    phase_ms: int | None = None  # refill phase within the minute; None = drawn from the seed
    continuous: bool = False  # refill continuously instead of one lump a minute
    expiry: bool = False  # each token lives 60 min, instead of a cap of 60 x net rate
    flow_reduction: float = 0.0  # tokenFlowReduction, tokens/minute
    report_net_rate: bool = False  # refillRate reported net of tokenFlowReduction (unverified)
    # -- keys and endpoints (§1, §4)
    key: str | None = None  # the only accepted key; None accepts any
    expired: bool = False  # the key's plan lapsed: every call is a 402
    offers_max_asins: int = 100  # the Java client's "max 20 ASINs with offers", if set to 20
    deal_empty_free: bool = False  # a /deal page with no results costs nothing (unverified)
    token_cost: float = 0.0  # what a GET /token costs: free per Keepa (§1.3); the seed assumed 1
    # -- time (§1.2: offers calls take 2-20 s)
    latency: bool = True  # simulate processing time
    latency_scale: float = 1.0  # multiply every processing time
    # -- faults, all off by default (§4, §6.7)
    errors: str = ""  # server errors with HTML bodies: "500:0.01,503:0.02" (share per status)
    outages: str = ""  # every call 503 in these windows: "START_S+LENGTH_S,..." after the start
    drop: float = 0.0  # share of admitted calls charged whose connection then drops
    slow: float = 0.0  # share of calls that take `slow_s` longer
    slow_s: float = 30.0
    offers_fail: float = 0.0  # share of products whose offer fetch fails: 1 token, history only
    rate_noise: float = 0.0  # the reported refillRate is off by up to this, tokens/minute
    rate_spike_share: float = 0.0  # share of envelopes whose refillRate is `rate_spike` ...
    rate_spike: float = 12.0  # ... instead (the seed once read 12 on a 5/min plan)
    lockout_below: float | None = None  # not Keepa's: below -N the key gets only 429s ...
    lockout_s: float = 86_400.0  # ... for this long

    def __post_init__(self) -> None:
        for name in ("drop", "slow", "offers_fail", "rate_spike_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise SettingsError(f"server.{name}: must be between 0 and 1")
        for name in ("flow_reduction", "latency_scale", "slow_s", "rate_noise", "lockout_s",
                     "token_cost"):
            if getattr(self, name) < 0:
                raise SettingsError(f"server.{name}: must be >= 0")
        if not self.rate_spike > 0:
            raise SettingsError("server.rate_spike: must be > 0")
        if not 1 <= self.offers_max_asins <= 100:
            raise SettingsError("server.offers_max_asins: must be between 1 and 100")
        if self.phase_ms is not None and not 0 <= self.phase_ms < 60_000:
            raise SettingsError("server.phase_ms: must be between 0 and 59999")
        if self.lockout_below is not None and self.lockout_below < 0:
            raise SettingsError("server.lockout_below: must be >= 0 (the lockout is below -N)")
        self.fault_settings()  # parse errors and outages now: a bad one is a one-line error

    def fault_settings(self) -> FaultSettings | None:
        """The faults switched on, or None when there are none (the fast path)."""
        faults = FaultSettings(parse_errors(self.errors), parse_windows(self.outages), self.drop,
                               self.slow, round(self.slow_s * 1000), self.offers_fail,
                               self.rate_noise, self.rate_spike_share, self.rate_spike,
                               self.lockout_below, round(self.lockout_s * 1000))
        switched = (faults.errors, faults.outages, faults.drop, faults.slow, faults.offers_fail,
                    faults.rate_noise, faults.rate_spike_share, faults.lockout_below is not None)
        return faults if any(switched) else None


@dataclass
class Pending:
    """A request between `begin` and `finish`."""

    status: int
    payload: dict[str, Any]
    cost: float = 0.0
    latency_ms: int = 0
    zeroed: bool = False  # the envelope's token fields are all 0 (bad key, no plan, bad path)
    path: str = ""
    text: str | None = None  # a non-JSON body instead of payload and envelope
    dropped: bool = False


class DealQuery(NamedTuple):
    cache_key: str
    page: int
    sort: int
    keep: Callable[[Deal], bool] | None = None  # the selection's filter; None: no filter


class ProductQuery(NamedTuple):
    asins: list[str]
    offers: int
    update: int
    rating: bool
    buybox: bool
    stock: bool
    stats: bool = True  # a stats object asked for (``stats``)
    history: bool = True  # the csv histories (``history=0`` drops them)
    days: int | None = None  # histories trimmed to the last `days`


class MockKeepa:
    def __init__(self, settings: ServerSettings, market: DealMarket, seed: int, start_ms: int):
        self.settings = settings
        self.market = market
        self.start_ms = start_ms
        self.latency_rng = random.Random(f"{seed}/latency")
        phase = settings.phase_ms
        if phase is None:
            phase = random.Random(f"{seed}/phase").randrange(60_000)
        self.bucket = TokenBucket(settings.rate, start_ms, phase_ms=phase,
                                  initial=settings.initial, continuous=settings.continuous,
                                  flow_reduction=settings.flow_reduction, expiry=settings.expiry)
        fault_settings = settings.fault_settings()
        self.faults = Faults(fault_settings, seed, start_ms) if fault_settings else None
        self.offers_fetched: dict[str, int] = {}  # when each product's offers were last fetched
        self.refreshed: dict[str, int] = {}  # when Keepa last refreshed a product on request
        self._deal_cache: dict[str, tuple[int, Snapshot]] = {}
        self.objects = Objects(market.settings.sellers)
        self.http_429 = 0
        self.drawn_ms = {kind: [0, 0] for kind in LATENCY_MS}  # kind -> [total, count]
        self.charged_by_path: Counter[str] = Counter()
        self._endpoints = {"token": (_token_args, self._token), "deal": (_deal_args, self._deal),
                           "product": (self._product_args, self._product),
                           "seller": (_seller_args, self._seller)}

    # -- the two steps -----------------------------------------------------------------
    def begin(self, path: str, params: dict[str, str], now_ms: int,
              body: str | None = None) -> Pending:
        path = path.strip("/")
        self.market.advance(now_ms)
        self.bucket.advance(now_ms)
        faults = self.faults
        if faults is not None and (failure := faults.failure(now_ms)):
            return Pending(failure, {}, text=error_page(failure), path=path)
        key = params.get("key")
        if not key or self.settings.key is not None and key != self.settings.key:
            return Pending(400, _error("invalidParameter", "You used an invalid parameter for "
                                       "this API call."), zeroed=True, path=path)
        if self.settings.expired:
            return Pending(402, _error("paymentRequired", "Your API access has expired."),
                           zeroed=True, path=path)
        endpoint = self._endpoints.get(path)
        if endpoint is None:
            return Pending(404, _error("notFound", f"unknown path /{path}"), zeroed=True, path=path)
        parse, run = endpoint
        try:
            query = parse(params, body)
        except Reject as exc:
            return Pending(exc.status, _error(exc.kind, str(exc)), path=path)
        if path != "token" and (self.bucket.balance <= 0
                                or faults is not None and faults.locked(now_ms)):
            self.http_429 += 1
            return Pending(429, _error("notEnoughToken", "Not enough tokens."),
                           latency_ms=self._latency("refused"), path=path)
        payload, cost, latency = run(query, now_ms)
        pending = Pending(200, payload, cost, latency, path=path)
        if faults is not None:
            pending.latency_ms += faults.slow_ms()
            pending.dropped = faults.dropped()
        return pending

    def finish(self, pending: Pending, now_ms: int) -> tuple[int, dict[str, Any] | str]:
        if pending.cost:
            self.bucket.charge(pending.cost, now_ms)
            self.charged_by_path[pending.path] += pending.cost
            if self.faults is not None:
                self.faults.after_charge(self.bucket.balance, now_ms)
        else:
            self.bucket.advance(now_ms)
        if pending.text is not None:
            return pending.status, pending.text
        body = {**self.envelope(now_ms, pending), **pending.payload}
        return (DROPPED if pending.dropped else pending.status), body

    def handle(self, path: str, params: dict[str, str], now_ms: int,
               body: str | None = None) -> tuple[int, dict[str, Any] | str]:
        """Both steps at one instant (no latency); for tests and quick looks."""
        return self.finish(self.begin(path, params, now_ms, body), now_ms)

    def envelope(self, now_ms: int, pending: Pending) -> dict[str, Any]:
        if pending.zeroed:
            return dict(zip(ENVELOPE_FIELDS, (now_ms, 0, 0, 0, 0.0, 0, 0)))
        b = self.bucket
        rate = b.net_rate if self.settings.report_net_rate else b.rate
        if self.faults is not None:
            rate = self.faults.reported_rate(rate)
        return dict(zip(ENVELOPE_FIELDS, (
            now_ms, _int(b.balance), b.refill_in_ms(now_ms), _int(rate),
            float(b.flow_reduction), _int(pending.cost), pending.latency_ms)))

    # -- endpoints: a parser (raises Reject) and a handler -> (payload, cost, latency ms) --
    def _token(self, query, now_ms):
        return {}, self.settings.token_cost, self._latency("token")

    def _deal(self, query: DealQuery, now_ms: int):
        cached = self._deal_cache.get(query.cache_key)
        if cached is None or now_ms - cached[0] >= DEAL_CACHE_MS:
            cached = (now_ms, self.market.snapshot(query.sort))
            self._deal_cache[query.cache_key] = cached
        first = query.page * DEAL_PAGE_SIZE
        asins = cached[1].asins(first, min(first + DEAL_PAGE_SIZE, DEAL_REACH), query.keep)
        deals = self.objects.deals([self.market.deals[a] for a in asins])
        cost = 0.0 if not deals and self.settings.deal_empty_free else DEAL_PAGE_COST
        return {"deals": deal_response(deals)}, cost, self._latency("deal")

    def _product_args(self, params, body) -> ProductQuery:
        check(params, PRODUCT_PARAMS)
        if "code" in params:
            raise Reject(400, "invalidParameter", "code lookups are not modelled; use asin")
        asins = [a for a in params.get("asin", "").split(",") if a]
        if not asins:
            raise Reject(400, "invalidParameter", "asin is required")
        if len(asins) > 100:
            raise Reject(405, "parameterOutOfRange", "at most 100 ASINs per call")
        offers = int_param(params, "offers", 0)
        if offers and not 20 <= offers <= 100:
            raise Reject(405, "parameterOutOfRange", "offers must be between 20 and 100")
        if offers and len(asins) > self.settings.offers_max_asins:
            raise Reject(405, "parameterOutOfRange",
                         f"at most {self.settings.offers_max_asins} ASINs with offers")
        update = int_param(params, "update", 1)
        if update < -1:
            raise Reject(405, "parameterOutOfRange", "update must be >= -1")
        days = int_param(params, "days", 1) if "days" in params else None
        if days is not None and days < 1:
            raise Reject(405, "parameterOutOfRange", "days must be >= 1")
        return ProductQuery(asins, offers, update, flag(params, "rating"),
                            flag(params, "buybox"), flag(params, "stock"),
                            stats_param(params), flag(params, "history", True), days)

    def _product(self, q: ProductQuery, now_ms: int):
        """1 per found product; with offers 6 per found offer page instead, or a flat 5
        if the offers are fresher than `update` hours; rating, buybox, stock and
        update=0 extras (keepa-api.md §1.2). Unknown ASINs are not returned and cost 0."""
        faults = self.faults
        products, cost = [], 0.0
        for asin in q.asins:
            deal = self.market.deals.get(asin)
            if deal is None:
                continue
            refreshed = self.refreshed.get(asin, deal.created_ms)
            last = self.offers_fetched.get(asin)
            failed = bool(q.offers) and faults is not None and faults.offers_failed()
            fetched = last is not None and now_ms - last < q.update * HOUR_MS
            cost += product_cost(deal, q, offers_fetched=fetched, failed=failed,
                                 refreshed_lately=now_ms - refreshed < HOUR_MS)
            if q.offers and not failed and not offers_fresh(deal, q, fetched):
                self.offers_fetched[asin] = now_ms
            if q.update == 0 or q.update > 0 and now_ms - refreshed >= q.update * HOUR_MS:
                self.refreshed[asin] = refreshed = now_ms
            products.append(self.objects.product(
                deal, q, now_ms=now_ms, updated_ms=refreshed,
                offers_ms=None if failed else self.offers_fetched.get(asin, deal.created_ms)))
        latency = self._latency("offers" if q.offers else "product", len(q.asins))
        return ({"products": products} if products else {}), cost, latency

    def _seller(self, ids: list[str], now_ms: int):
        """1 per seller found; unknown ids cost nothing and are flagged in `error`."""
        sellers = {s: seller_object(found, now_ms) for s in ids
                   if (found := self.market.seller(s)) is not None}
        payload: dict[str, Any] = {"sellers": sellers}
        unknown = [s for s in ids if s not in sellers]
        if unknown:
            payload.update(_error("invalidSellerId", f"unknown seller ids: {','.join(unknown)}"))
        return payload, float(len(sellers)), self._latency("seller")

    def _latency(self, kind: str, asins: int = 0) -> int:
        """A processing time drawn from `LATENCY_MS` for a call of `kind`."""
        if not self.settings.latency:
            return 0
        low, high, mean, per_asin = LATENCY_MS[kind]
        if mean is None:
            ms = self.latency_rng.randint(low, high)
        else:
            ms = min(high, low + round(self.latency_rng.expovariate(1 / (mean - low))))
        drawn = self.drawn_ms[kind]
        drawn[0], drawn[1] = drawn[0] + ms, drawn[1] + 1
        ms += per_asin * asins
        scale = self.settings.latency_scale
        return ms if scale == 1.0 else round(ms * scale)

    def shortest_latency_ms(self, kind: str) -> int:
        """The least processing time a call of `kind` can take."""
        return round(LATENCY_MS[kind][0] * self.settings.latency_scale) if self.settings.latency \
            else 0

    def parse_product(self, params: dict[str, str]) -> ProductQuery:
        """A /product query as this server reads it (raises `Reject` if it refuses it)."""
        return self._product_args(params, None)

    def mean_latency_s(self, kind: str, asins: int = 0) -> float:
        """The mean processing time of a call of `kind` carrying `asins` ASINs (with the
        ``slow`` fault's share), in seconds: what the bound's latency ceiling counts. The
        mean of the times drawn so far, if any were, so that a run's own luck with its
        latencies cannot carry it past the bound; else the model's mean."""
        s = self.settings
        if not s.latency:
            return 0.0
        low, high, mean, per_asin = LATENCY_MS[kind]
        total, count = self.drawn_ms[kind]
        if count:
            ms = total / count
        elif mean is None:
            ms = (low + high) / 2
        else:  # low plus an exponential of mean (mean - low), cut at high
            ms = low + (mean - low) * (1 - math.exp(-(high - low) / (mean - low)))
        slow = s.slow * s.slow_s if s.slow else 0.0
        return (ms + per_asin * asins) * s.latency_scale / 1000 + slow


def _token_args(params, body) -> None:
    check(params, TOKEN_PARAMS)


def _deal_args(params: dict[str, str], body: str | None) -> DealQuery:
    check(params, DEAL_PARAMS)
    selection = parse_selection(body if body is not None else params.get("selection"))
    return DealQuery(selection.cache_key, selection.page, selection.sort, selection.keep)


def _seller_args(params: dict[str, str], body) -> list[str]:
    check(params, SELLER_PARAMS)
    ids = [s for s in params.get("seller", "").split(",") if s]
    if not ids:
        raise Reject(400, "invalidParameter", "seller is required")
    if len(ids) > 100:
        raise Reject(405, "parameterOutOfRange", "at most 100 sellers per call")
    return ids


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "details": ""}}


def _int(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(x, 3)
