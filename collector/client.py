"""The collector's Keepa client: permission, the call, the envelope, retries.

Every call goes through one path: take one of the ``max_in_flight`` slots,
ask the policy for permission in turn (waiting on the runtime's clock as told),
reserve the estimated cost, send, learn the envelope (settling the
reservation), give the slot back, report the call, then act on the status:
200 returns the payload as the endpoint's reader (`collector.answers`) takes it
from the body, 429 waits as the envelope says and sends the *same* request again
(with ``on_429 = "drop"`` a /product or /seller call gives up), 5xx, dropped
connections, a 200 whose body is not a JSON object and a 200 whose payload the
reader finds malformed back off (capped, jittered, bounded, one observer line
each; so does a 429 without a usable envelope, besides its wait), anything else
is a final error. An envelope `TokenManager.flaw` finds garbled is not adopted,
and said so in one line; the answer's data is used all the same. A sound
envelope is adopted (and its charge learnt) whatever the payload: Keepa charged,
and the call is counted as a failed one that consumed those tokens.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import answers
from .callmodel import kind
from .config import Config
from .events import CallRecord, Observer
from .lanes import Slots
from .policies import POLICIES
from .runtime import Request, Runtime, TransportError
from .tokens import TokenManager, finite_number


TURN = {"recent": 0, "backfill": 1, "refresh": 2}
"""Who asks for tokens first when calls queue (several in flight): new deals, then the
backlog, then refreshes of what is stored; within a task, the call that finishes work
already paid for (`stage`), then first come first served."""


STAGES = 5  # the values `stage` takes, 0 to 4

T = TypeVar("T")


def stage(path: str, params: dict[str, str]) -> int:
    """How near a call is to storing what it works on: a seller lookup (0) or a full fetch
    (1) completes deals already peeked, a peek (2) starts on new ones, a page (3) lists
    more. Serving the near ones first keeps few peeked deals waiting on their full fetch."""
    if path == "product":
        return 1 if params.get("history") == "1" else 2
    return {"seller": 0, "deal": 3}.get(path, 4)


class ApiError(Exception):
    """A call failed for good. `fatal` errors (bad key, bad parameter) stop the collector."""

    def __init__(self, message: str, status: int | None = None, fatal: bool = False):
        super().__init__(message)
        self.status = status
        self.fatal = fatal


class WaitTooLong(Exception):
    """A wait exceeded ``max_wait_s`` with ``on_long_wait = "abort"``: give up this run."""


class Refused(ApiError):
    """A /product or /seller call answered 429 with ``on_429 = "drop"``: not sent again."""


class KeepaClient:
    def __init__(self, runtime: Runtime, config: Config, observer: Observer | None = None,
                 domain: int = 1, tokens: TokenManager | None = None):
        self.runtime = runtime
        self.config = config
        self.observer = observer or Observer()
        self.domain = domain
        # a belief of its own, unless handed one (``collector.processes``)
        self.tokens = tokens if tokens is not None else TokenManager(config, self.observer,
                                                                     runtime.now())
        self.policy = POLICIES[config.policy]()
        self.slots = Slots(runtime, config.max_in_flight)  # calls in flight on this key
        # permission is asked in turn (`TURN`), so that a dear call waiting for its
        # tokens is not overtaken, and starved, by cheaper ones
        self.turn = Slots(runtime, 1)

    # -- endpoints -----------------------------------------------------------------
    async def deals(self, task: str, page: int, sort: int, reserved: float) -> list[dict]:
        """One page (up to 150) of the deal list."""
        selection = {"page": page, "domainId": self.domain, "priceTypes": [1],
                     "sortType": sort, "dateRange": 0}
        return await self.call(task, "deal", {"selection": json.dumps(selection)}, reserved, 1,
                               read=answers.deal_page)

    async def products(self, task: str, asins: Sequence[str], reserved_per_asin: float, *,
                       offers: int, stats_days: int, history: bool, rating: bool,
                       days: int | None = None) -> list[dict]:
        params = product_params(asins, offers=offers, stats_days=stats_days, history=history,
                                rating=rating, days=days)
        return await self.call(task, "product", params, reserved_per_asin * len(asins),
                               len(asins), read=answers.products)

    async def sellers(self, task: str, seller_ids: Sequence[str]) -> dict:
        return await self.call(task, "seller", {"seller": ",".join(seller_ids)},
                               self.config.seller_reserved * len(seller_ids), len(seller_ids),
                               read=answers.sellers)

    async def sync(self, task: str) -> None:
        """Read the bucket from ``/token`` (free, never 429); failures keep the old belief."""
        try:
            response = await self.runtime.send(Request("token"))
        except TransportError:
            return
        now = self.runtime.now()
        self.tokens.observe(response.body, now)
        if self.tokens.rejected:
            self.observer.on_task(now, task, "malformed",
                                  f"/token: {self.tokens.rejected}; reading ignored")
        self._report(now, task, "token", 0, 0.0, response.status, response.body)

    # -- the one path every call takes ----------------------------------------------
    async def call(self, task: str, path: str, params: dict[str, str], reserved: float,
                   items: int, *, read: Callable[[dict[str, Any]], T]) -> T:
        failures = 0
        request = Request(path, {"domain": str(self.domain), **params})
        call, calls = kind(path, params), self.tokens.calls
        rank = TURN.get(task, len(TURN)) * STAGES + stage(path, params)
        while True:
            if self.config.learn_costs:
                reserved = calls.price(call, items, reserved)
            await self.slots.acquire()
            try:
                await self.turn.acquire(rank)
                try:
                    ticket = await self._permit(task, reserved, rank)
                finally:
                    self.turn.release()
                sent = self.runtime.now()
                try:
                    response = await self.runtime.send(request)
                except TransportError as exc:
                    status, body = 0, None
                    detail = str(exc) or "connection failed"
                else:
                    status, body = response.status, response.body
                    detail = _error_text(body)
                now = self.runtime.now()
                # a 400 envelope is zeroed: never a reading
                reading = self.tokens.observe(body if status != 400 else None, now, ticket)
                flaw = self.tokens.rejected
            finally:
                self.slots.release()
            answered = status == 200 and body is not None  # Keepa's own 200: it charged
            if answered:
                try:
                    payload = read(body)
                except answers.Malformed as exc:  # yet unusable: a failed call
                    status, detail = 0, f"HTTP 200 with a malformed payload: {exc}"
            elif status == 200:  # truncated, or a proxy's page: not Keepa's
                status, detail = 0, "HTTP 200 with a body that is not a JSON object"
            self._report(now, task, path, items, reserved, status, body)
            if answered:
                if flaw:  # (any other answer's line says it: `_failed`)
                    self.observer.on_task(now, task, "malformed",
                                          f"/{path}: HTTP 200: {flaw}; reading ignored")
                consumed = body.get("tokensConsumed")
                if finite_number(consumed):
                    calls.learn(call, items, consumed, now - sent)
            if status == 200:
                return payload
            if status == 429:
                if self.config.on_429 == "drop" and path in ("product", "seller"):
                    raise Refused(f"/{path}: HTTP 429 {detail}".rstrip(), status)
                wait = self.policy.after_429(self.tokens, now)
                if reading:  # Keepa answered: the failures before it were not in a row
                    failures = 0
                else:  # it says nothing of the bucket (a proxy's?): back off as well
                    failures += 1
                    wait = max(wait, self._failed(failures, task, path, status,
                                                  flaw or detail or "without an envelope", now))
                await self._wait(wait, "429 retry", task, whole=True)
                continue
            if status in (0, 500, 502, 503, 504):
                failures += 1
                await self.runtime.sleep(self._failed(failures, task, path, status, detail, now))
                continue
            raise ApiError(f"/{path}: HTTP {status} {detail}".rstrip(), status, fatal=True)

    async def _permit(self, task: str, cost: float, rank: int) -> int:
        """Wait until the policy lets a call reserving `cost` go; reserve it (the ticket).
        With ``yield_turn``, after each wait the call steps aside for one that goes first
        in turn (`rank`) and has come meanwhile."""
        while (wait := self.policy.decide(self.tokens, task, cost, self.runtime.now())) is not None:
            if wait.reason == "spacing":
                await self.runtime.sleep(wait.seconds)
            else:
                await self._wait(wait.seconds, wait.reason, task, recheck=wait.recheck_s)
                if self.config.poll_token_endpoint:
                    await self.sync(task)
            if self.config.yield_turn and self.turn.outranked(rank):
                self.turn.release()  # a call that goes first is waiting: let it ask first
                await self.turn.acquire(rank)
        return self.tokens.reserve(task, cost, self.runtime.now())

    async def _wait(self, seconds: float, reason: str, task: str, whole: bool = False,
                    recheck: float = math.inf) -> None:
        """Wait for tokens, or give up per ``on_long_wait``. A policy's wait lasts one poll
        interval (or its `recheck`) at most, to look again; a 429's lasts as long as the
        envelope says (`whole`), so the retry does not meet the same empty bucket."""
        limit = self.config.max_wait_s
        if limit is not None and seconds > limit and self.config.on_long_wait == "abort":
            raise WaitTooLong(f"{task}: {reason} wait of {_secs(seconds)} exceeds {_secs(limit)}")
        if not whole or math.isinf(seconds):
            seconds = min(seconds, self.config.poll_interval_s, recheck)
        await self.runtime.sleep(seconds)

    def _failed(self, failures: int, task: str, path: str, status: int, detail: str,
                now: float) -> float:
        """The backoff after the `failures`-th failed answer in a row, said in one line;
        past ``max_retries`` the call gives up (not fatal: the task's next run tries again)."""
        what = detail if status == 0 else f"HTTP {status} {detail}".rstrip()
        limit = self.config.max_retries
        if limit is not None and failures > limit:
            raise ApiError(f"/{path}: gave up after {failures} failures ({what})", status)
        wait = self._backoff(failures)
        self.observer.on_task(now, task, "retry", f"/{path}: {what}; retrying in {wait:.1f} s "
                              f"(failure {failures} of "
                              f"{'unlimited' if limit is None else limit + 1})")
        return wait

    def _backoff(self, failures: int) -> float:
        """The wait after the `failures`-th failure in a row, by ``backoff``."""
        config, n = self.config, min(failures, 64)  # the cap binds long before 2^64
        if config.backoff == "cumulative":
            return min(config.backoff_cap_s, config.backoff_base_s * (2 ** n - 1))
        ceiling = min(config.backoff_cap_s, config.backoff_base_s * 2 ** (n - 1))
        return ceiling * (0.5 + 0.5 * self.runtime.rng.random())

    def _report(self, now: float, task: str, path: str, items: int, reserved: float,
                status: int, body: dict | None) -> None:
        body = body or {}
        self.observer.on_call(CallRecord(now, task, path, items, reserved, status,
                                         _figure(body.get("tokensConsumed")),
                                         _figure(body.get("tokensLeft"))))


def product_params(asins: Sequence[str], *, offers: int, stats_days: int, history: bool,
                   rating: bool, days: int | None = None) -> dict[str, str]:
    """The query of a ``/product`` call as the collector sends it (the bound prices the
    collector's calls by handing these to the mock's own parser)."""
    params = {"asin": ",".join(asins), "stats": str(stats_days),
              "history": "1" if history else "0"}
    if offers:
        params["offers"] = str(offers)
        params["only-live-offers"] = "1"
    if rating:
        params["rating"] = "1"
    if days is not None:
        params["days"] = str(days)
    return params


def _error_text(body: dict | None) -> str:
    error = (body or {}).get("error")
    if isinstance(error, dict):
        return f"{error.get('type', '')}: {error.get('message', '')}".strip(": ")
    return ""


def _figure(value: Any) -> float | None:
    """An envelope's count as reported, or None if it is not a finite number: observers
    add these up, and a garbled one must not stop them."""
    return value if finite_number(value) else None


def _secs(seconds: float) -> str:
    return "forever" if math.isinf(seconds) else f"{seconds:.0f} s"
