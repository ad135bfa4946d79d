"""Keepa over HTTP: the live runtime's transport, on httpx.

One `httpx.AsyncClient` for the whole run, so connections are kept alive and
reused; bodies come gzipped and every call has timeouts. The contract with the
client (``collector.client``) is narrow: an HTTP answer becomes a `Response`
(its body None unless it is a JSON object, as Keepa's 500/503 pages are not),
and no answer at all (refused, reset, dropped, timed out, undecodable, or a
body over `MAX_BODY`) becomes
a `TransportError` whose text has been through the `Redactor`, neither chained
to httpx's exception nor raised while it is handled (so not its context either):
that exception holds the request, its URL and so the key.
"""

from __future__ import annotations

import json

import httpx

from collector.config import ConfigError
from collector.runtime import Request, Response, TransportError

from .redact import Redactor

TOKEN_READERS = 3  # the tasks (backfill, recent, refresh), each reading /token by itself
TIMEOUT = httpx.Timeout(120.0, connect=15.0)  # offers calls take up to 20 s (keepa-api.md §1.2)
MAX_BODY = 50 * 2**20  # bytes, decoded: far above any real answer (100 products with offers)


def check_url(url: str) -> str:
    """The API base URL without a trailing slash; a one-line error if it is not http(s)
    or carries a query (the key goes in each request's query, nowhere else)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host \
            or parsed.query or parsed.fragment:
        raise ConfigError(f"--api-url: expected http(s)://HOST[:PORT][/PATH], got {url!r}")
    return url.rstrip("/")


class HttpTransport:
    def __init__(self, base_url: str, key: str, redactor: Redactor, in_flight: int = 1, *,
                 max_body: int = MAX_BODY, transport: httpx.AsyncBaseTransport | None = None):
        """`in_flight`: the calls the collector keeps out at once (``max_in_flight``); the
        pool keeps a connection alive for each, and a few more for the tasks' free
        ``/token`` reads, which take no slot. A body longer than `max_body` (decoded, so a
        gzip bomb too) is not read on: the call failed. `transport` replaces the network
        (tests pass an `httpx.MockTransport`)."""
        self.key = key
        self.redact = redactor
        self.max_body = max_body
        self.client = httpx.AsyncClient(
            base_url=check_url(base_url), timeout=TIMEOUT, transport=transport,
            headers={"Accept-Encoding": "gzip", "Connection": "keep-alive"},
            limits=httpx.Limits(max_connections=in_flight + TOKEN_READERS,
                                max_keepalive_connections=in_flight + TOKEN_READERS))

    async def send(self, request: Request) -> Response:
        try:
            async with self.client.stream("GET", f"/{request.path}",
                                          params={"key": self.key, **request.params}) as reply:
                content = await self._read(reply)
        except httpx.HTTPError as exc:
            failure = self.redact(f"{type(exc).__name__}: {exc}".rstrip(": "))
        else:
            if content is not None:
                return Response(reply.status_code, _json_object(content))
            failure = f"HTTP {reply.status_code} with a body over {self.max_body:,} bytes"
        # raised out here, so not even its __context__ holds httpx's exception (and the URL)
        raise TransportError(failure) from None

    async def _read(self, reply: httpx.Response) -> bytes | None:
        """The decoded body, or None once it passes `max_body` (the rest is not read)."""
        declared = reply.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            return None  # said so up front (gzipped, it would be longer still)
        chunks, size = [], 0
        async for chunk in reply.aiter_bytes():
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def close(self) -> None:
        await self.client.aclose()


def _json_object(content: bytes) -> dict | None:
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
