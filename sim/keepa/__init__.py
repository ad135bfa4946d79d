"""A mock Keepa API: the server's truth about tokens, costs and deals.

Sans-IO: every entry point takes the current time in epoch milliseconds, and
refills are computed lazily from it, so the same model serves the SimPy
simulation and ``sim serve`` on a real clock (DEVELOPERS.md, rule 6).
"""

from .bucket import TokenBucket
from .market import DealMarket, MarketSettings
from .server import MockKeepa, ServerSettings

__all__ = ["DealMarket", "MarketSettings", "MockKeepa", "ServerSettings", "TokenBucket"]
