"""How many ids one call carries: the batch sizes set, or with ``batch_refill_s`` what
the refill of that many seconds buys.

A call dearer than a little refill waits long for its tokens, and while it waits
its turn (``collector.client``) holds up every call queued behind it, new deals'
too. Priced at what calls of its kind were really charged per id
(`collector.callmodel`), a batch of ``rate x batch_refill_s / 60 / price`` ids
is spent as soon as that refill has come: a handful of ASINs a call at 5
tokens/min, the most Keepa takes at 4000.
"""

from __future__ import annotations

from collections.abc import Callable

from .callmodel import kind
from .client import product_params
from .config import Config
from .keepa import MAX_IDS
from .tokens import TokenManager


def fit(tokens: TokenManager, most: int | None, query: Callable[[Config], dict],
        guess: float) -> int | None:
    """Ids for a ``/product`` call of the config's `query` (``peek_query`` or
    ``full_query``): `most` (None: no limit of its own), or with ``batch_refill_s`` as
    many as that refill buys at the learned price per id (`guess` until one was
    learned), at least one."""
    seconds = tokens.config.batch_refill_s
    if seconds is None:
        return most
    params = product_params((), **query(tokens.config))
    price = tokens.calls.price(kind("product", params), 1, guess)
    most = MAX_IDS if most is None else most
    if price <= 0:
        return most
    return max(1, min(most, int(tokens.rate * seconds / 60.0 / price)))
