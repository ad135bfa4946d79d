"""The janitor: deletes the stored deals the collector has not seen for a while.

The seed's ``janitor.clean_stale_deals`` (seed-system.md §1.3, §1.6): every
``janitor_period_s`` one storage call deletes the deals last seen more than
``janitor_ttl_s`` ago. A deal is seen when it is stored, refreshed, or listed on
a /deal page the collector reads (`Storage.seen`), so the deals the collector
keeps in view stay and the rest go: when ingestion is slower than the TTL
allows, the stored count falls (the seed's falling dashboard count). It calls
no Keepa endpoint, so it costs no tokens.

Every process forgets the deals it deleted (`unclaim`): a page that lists one
again lets it be examined, paid for and stored again, as a new deal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import Collector
    from .processes import Process

TASK = "janitor"


async def janitor(ctx: Collector, processes: Iterable[Process]) -> None:
    """One run: a storage commit's time, then the delete."""
    await ctx.runtime.sleep(ctx.config.commit_overhead_s)
    now = ctx.runtime.now()
    gone = ctx.storage.expire(now, ctx.config.janitor_ttl_s)
    for process in processes:
        process.unclaim(gone)
    ctx.observer.on_deleted(now, TASK, gone)
