"""The named configs: the seed's pipeline before and after its fix, the peers people
run, and ours (``adaptive``).

``seed-before`` and ``seed-after`` reproduce the seed pipeline of 2026-02-08
(../shared/reference/seed-system.md §1 and §2.1): the state before commit 3a05a87 and
right after it. Every preset is a `Config`; ``sim compare`` runs them side by side.
"""

from __future__ import annotations

from .config import Config, ConfigError

SEED_PIPELINE = Config(peek_filter=False, recent_sort=4)
"""The seed's pipeline of 2026-02-08 under the project's own token rules (1 s spacing,
chunk and batch 4, no trigger).

Its recent-deals updater paged with sortType 4 (``SORT_TYPE_LAST_UPDATE = 4`` in the
seed's simple_task.py), which Keepa sorts by percent drop, not by last update
(seed-system.md §5), so the watermark test stops at the first old deal of page 0."""

SEED_CODE = {
    "spacing_from": "end", "belief": "last-reading", "recharge_below_rate": 10.0,
    "priority_pass": True, "recovery_buffer": 5.0, "on_429": "drop",
    "seller_lookup_all": True, "cursor_ratchet": False,
}
"""Where the seed's code differs from the project's rules (seed-system.md §2.1, V7, the
same at 4b053bc and 3a05a87 but for the spacing): the spacing counted from the previous
answer; the last tokensLeft as the balance, the rate from /token, two-stage waits;
recharge only below 10 tokens/min, a priority pass and a +5 recovery above; a 429'd
/product or /seller call dropped, not retried (§5); a seller lookup for every fetched
new deal (§1.4); the cursor saved as each chunk left it, even behind the stored one (§1.4)."""

SEED_AFTER = SEED_PIPELINE.updated(SEED_CODE)
"""The pipeline right after commit 3a05a87, with its TokenManager's rules."""

DEFAULT_PRESET = "seed-after"
"""The preset a command starts from when nothing names one (``collector live`` excepted)."""

PRESETS: dict[str, Config] = {
    "seed-before": SEED_AFTER.updated({
        "min_interval_s": 60.0, "chunk_size": 1, "batch_size": 1,
        "trigger_recent_after_chunk": True,
    }),
    "seed-after": SEED_AFTER,
    "fixed": Config(),
    "reactive": SEED_PIPELINE.updated({
        "policy": "reactive", "min_interval_s": 0.0, "sync_on_start": False,
        "poll_token_endpoint": False,
    }),
    "adaptive": Config(
        policy="adaptive", learn_costs=True, poll_token_endpoint=False, min_interval_s=0.0,
        max_in_flight=16, peek_offers=0, peek_rating=False, batch_size=100, chunk_size=100,
        recent_batch_size=100, seller_batch_size=100, seller_cache_s=86_400.0,
        recent_peek=True, recent_period_s=20.0,
        recent_max_interval_s=3600.0, recent_max_deals=100_000, recent_max_pages=67,
        recent_same_minute=True, recent_read_share=0.05, batch_refill_s=60.0, yield_turn=True,
        chunk_overhead_s=0.0),
}
"""Named starting points. ``fixed`` is the seed's pipeline under the project's token
rules with its two known faults mended: the peek filters (the seed's did not until
commit 21d4d2b) and the recent-deals updater pages newest first (sortType 1).
``reactive`` is a community client that only honours 429s, on the seed's pipeline.
``adaptive`` is ours: it spends tokens as they come on the prices Keepa charged
(`collector.policies.AdaptivePolicy`), keeps up to 16 calls out, carries up to 100 ids
a call but no more than a minute of refill buys, lets new deals' calls ask before the
backlog's, peeks at prices only, and reads the recent list when a page of new deals is
due or a read costs 5 % of the refill since the last (at least hourly)."""

_CLIENT = {"policy": "reactive", "min_interval_s": 0.0, "sync_on_start": False,
           "poll_token_endpoint": False}
"""A client library's admission: no pre-check, no spacing, no /token reads; Keepa's 429s
are its only budget."""

PEERS: dict[str, Config] = {
    "seed-head": PRESETS["fixed"].updated({
        "min_token_threshold": 1.0, "burst_threshold": "40<20,50", "max_deficit": -180.0,
        "low_cost_release": 20.0, "max_wait_s": 60.0, "on_long_wait": "abort",
        "backfill_period_s": 300.0, "recent_period_s": 300.0, "workers": 2,
        "scan_batch_size": "1<10,20<20,15<30,50", "commit_batch_size": 5,
        "peek_stats_days": 365,
    }),
    "keepa-client": PRESETS["fixed"].updated({
        **_CLIENT, "wait_429": "refill-deficit", "max_retries": 0,
    }),
    "java-client": PRESETS["fixed"].updated({
        **_CLIENT, "wait_429": "refill", "max_retries": None, "backoff": "cumulative",
        "backoff_base_s": 0.1, "backoff_cap_s": 60.0, "max_in_flight": 4,
    }),
}
"""The collectors people run, on `fixed`'s pipeline, each copying a behaviour from its
description. ``seed-head``: the seed's later TokenManager (seed-system.md §2.2, V18) and
the Smart Ingestor's batch sizes and five-minute schedule (§1.9, §1.3). ``keepa-client``:
the community Python client (keepa-api.md §5.1, ``Keepa._request``): sends blind, waits
out a 429 for its ``time_to_refill`` and retries for ever; any other failure raises.
``java-client``: Keepa's Java client (§5.2): a 429 waits ``refillIn`` + 100 ms, a failure
0.1, 0.3, 0.7 s ... up to 60 s, for ever; four threads."""
PEERS["fixed-sleep"] = PEERS["keepa-client"].updated({"chunk_overhead_s": 60.0})
"""The naive fix people try first: the community client with a fixed pause between
chunks. A minute: Keepa's refill period, and the pause the seed itself slept after every
chunk from 01-23 to 02-04 (seed-system.md §1.4). The pause is blind to the plan."""
PRESETS.update(PEERS)


def preset_config(name: str) -> Config:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None
