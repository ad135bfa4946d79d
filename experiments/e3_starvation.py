"""Finding 3: does triggering the recent-deals run after every chunk starve the backfiller?

Runs the seed's pipeline before the fix (chunks of 1, 60 s spacing), with the
fix's batches of 4 and 1 s spacing, and with its faults mended (preset fixed),
each with and without the trigger, and splits the tokens between the tasks.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from .runner import Context, Finding, markdown, means, save, sweep

METRICS = ["tasks.backfill.tokens_consumed", "tasks.recent.tokens_consumed",
           "tasks.backfill.deals_stored", "tasks.recent.deals_stored", "tasks.recent.runs",
           "tasks.recent.skipped", "deals_per_hour"]


def run(ctx: Context) -> Finding:
    frames = {}
    for preset in ("seed-before", "seed-after", "fixed"):
        table, _ = sweep(ctx, "e3_starvation", preset=preset)
        frames[preset] = means(table, ["trigger_recent_after_chunk"], METRICS).assign(
            preset=preset)
    import pandas as pd

    points = pd.concat(frames.values(), ignore_index=True)
    at = points.set_index(["preset", "trigger_recent_after_chunk"])
    measured = {}
    for preset in frames:
        on, off = at.loc[(preset, True)], at.loc[(preset, False)]
        tag = preset.replace("-", "_")
        measured[f"{tag}_backfill_tokens_ratio"] = (on["tasks.backfill.tokens_consumed"]
                                                    / off["tasks.backfill.tokens_consumed"])
        measured[f"{tag}_backfill_deals_ratio"] = (on["tasks.backfill.deals_stored"]
                                                   / off["tasks.backfill.deals_stored"])
        measured[f"{tag}_recent_runs_ratio"] = on["tasks.recent.runs"] / off["tasks.recent.runs"]
        measured[f"{tag}_skipped_per_run"] = on["tasks.recent.skipped"] / on["tasks.recent.runs"]
        measured[f"{tag}_all_deals_ratio"] = on["deals_per_hour"] / off["deals_per_hour"]
    b, f = "seed_before", "fixed"
    answer = (
        f"In the seed's pipeline the trigger cuts the backfiller's tokens to "
        f"{measured[f'{b}_backfill_tokens_ratio']:.0%} and all deals stored to "
        f"{measured[f'{b}_all_deals_ratio']:.0%} of what it gets without it, as the seed says; "
        f"recent runs rise {measured[f'{b}_recent_runs_ratio']:.1f}x. They are not heavy, "
        "though: the seed's recent-deals updater pages in percent-drop order (sortType 4, "
        "which it took for last update), meets a deal older than its watermark at the top of "
        "page 0 and stops, so it stores nothing and every run is one /deal page of 5 tokens. "
        "Being short, the runs seldom hold the lock when the next trigger comes "
        f"({measured[f'{b}_skipped_per_run']:.2f} skips per run). With the fix's batches of 4 "
        f"the trigger costs the backfiller {1 - measured['seed_after_backfill_tokens_ratio']:.0%}"
        " of its tokens. Where the updater pages newest first (preset fixed) a run fetches "
        f"new deals and lasts, most triggers skip on its lock "
        f"({measured[f'{f}_skipped_per_run']:.0f} per run), and the trigger changes all deals "
        f"stored by {measured[f'{f}_all_deals_ratio'] - 1:+.0%}.")
    return Finding(3, "Token starvation by triggered runs",
                   "Does a recent-deals run after every chunk starve the backfiller?", answer,
                   measured,
                   markdown(points, {"preset": "base", "trigger_recent_after_chunk": "trigger",
                                     "tasks.backfill.tokens_consumed": "backfill tokens",
                                     "tasks.recent.tokens_consumed": "recent tokens",
                                     "tasks.backfill.deals_stored": "backfill deals",
                                     "tasks.recent.deals_stored": "recent deals",
                                     "tasks.recent.runs": "recent runs",
                                     "tasks.recent.skipped": "skipped triggers"}, digits=0),
                   [save(_figure(points), ctx, "e3_starvation")])


def _figure(points) -> Figure:
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    names = [f"{p}\ntrigger {'on' if t else 'off'}"
             for p, t in zip(points["preset"], points["trigger_recent_after_chunk"])]
    backfill = points["tasks.backfill.tokens_consumed"]
    left.bar(names, backfill, label="backfill")
    left.bar(names, points["tasks.recent.tokens_consumed"], bottom=backfill, label="recent")
    left.set_ylabel("tokens consumed in 24 h (mean over seeds)")
    left.set_title("Where the tokens go at 5 tokens/min")
    by_backfill = points["tasks.backfill.deals_stored"] / 24
    right.bar(names, by_backfill, label="by the backfiller")
    right.bar(names, points["tasks.recent.deals_stored"] / 24, bottom=by_backfill,
              label="by the recent task")
    right.set_ylabel("deals stored per hour (mean over seeds)")
    right.set_title("Which task stores the deals")
    for ax in (left, right):
        ax.set_ylim(top=ax.get_ylim()[1] * 1.15)  # room for the legend above the bars
        ax.legend(fontsize="small", loc="upper center", ncols=2)
        ax.tick_params(axis="x", labelsize="small")
    return fig
