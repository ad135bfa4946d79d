"""What the client's calls really cost and how long they take, learned from the answers.

Every 200 answer reports ``tokensConsumed``; the client also sees how long the
call was out. `CallModel` keeps, per kind of call (the endpoint and the
parameters that change its price: offers, rating, stock, buybox, update), a
moving average of the tokens charged per item (ASIN, seller or page) and of
the time out, so that a policy can reserve what calls cost instead of the
config's guesses, and look ahead by the time a call takes. The averages are
exponential, so when Keepa's prices move during a run the model follows
within a few calls.
"""

from __future__ import annotations

from collections.abc import Mapping

PRICED_BY = ("offers", "rating", "stock", "buybox", "update")
"""The query parameters that change what a call costs per item (keepa-api.md §1.2)."""
WEIGHT = 0.2  # how much one answer moves an average


def kind(path: str, params: Mapping[str, str]) -> tuple:
    """The kind of a call, as far as its price per item goes."""
    return (path, *(params.get(name, "") for name in PRICED_BY))


class CallModel:
    def __init__(self) -> None:
        self._per_item: dict[tuple, float] = {}
        self.latency_s: float | None = None  # over every call answered, whatever its kind

    def price(self, call: tuple, items: int, guess: float) -> float:
        """Tokens to reserve for a call of `items` items: the learned price, else `guess`."""
        per_item = self._per_item.get(call)
        return guess if per_item is None else per_item * max(1, items)

    def learn(self, call: tuple, items: int, consumed: float, latency_s: float) -> None:
        """Fold one answered call in: what it was charged, and how long it was out."""
        per_item = consumed / max(1, items)
        old = self._per_item.get(call)
        self._per_item[call] = per_item if old is None else old + WEIGHT * (per_item - old)
        old = self.latency_s
        self.latency_s = latency_s if old is None else old + WEIGHT * (latency_s - old)
