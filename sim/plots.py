"""A sweep's plots, drawn from its saved results (``sim sweep`` and ``sim plot``).

- ``curve_KNOB``: deals stored per hour against each swept knob, one colour
  per refill rate. The solid line holds the other knobs at that rate's best
  point, with the 95 % interval over the seeds as a band; the dashed line is
  the mean over every value of the other knobs.
- ``heatmap_A_B``: deals per hour over two knobs, one panel per refill rate,
  the other knobs again at the rate's best point; each cell's label black or
  white by the cell's luminance.
- ``sawtooth_refillR``: server balance and client estimate over time for the
  best and the worst run at each rate, re-run from their configs (runs are
  deterministic, so the re-run is the stored run); the server's line on top,
  the legend beside the axes.
- ``pareto``: each point's throughput against recent-deal freshness (p95),
  with the front of points no other point beats on both.
- ``fraction_of_bound`` (``sim compare``): the share of the bound each preset
  reaches against the refill rate, one line per preset.

Matplotlib's object API (no pyplot) keeps this free of global state.
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import numpy as np

from sim.engine import simulate
from sim.sweep import METRIC, Spec, aggregate

THROUGHPUT = "deals stored per hour"
UNITS = {
    "batch_size": "ASINs per call", "recent_batch_size": "ASINs per call",
    "chunk_size": "deals per chunk", "workers": "worker slots", "recent_max_deals": "deals",
    "recent_max_pages": "pages", "peek_offers": "offers", "full_offers": "offers",
    "max_retries": "retries", "refill_rate": "tokens/min", "market.backlog": "deals",
    "market.sellers": "sellers", "market.arrivals_per_hour": "deals/h",
    "server.flow_reduction": "tokens/min", "recent_sort": "sortType",
}
SUFFIXES = {"_s": "s", "_ms": "ms", "_min": "min", "_days": "days", "_cents": "cents",
            "_share": "fraction", "_roi": "fraction"}
TOKEN_WORDS = ("threshold", "reserved", "estimate", "deficit", "initial")


def unit(key: str) -> str:
    if key in UNITS:
        return UNITS[key]
    for suffix, name in SUFFIXES.items():
        if key.endswith(suffix):
            return name
    return "tokens" if any(word in key for word in TOKEN_WORDS) else ""


def label(keys) -> str:
    return " = ".join(f"{k} ({unit(k)})" if unit(k) else k for k in keys)


def draw_all(table, spec: Spec, out: Path, fmt: str = "png") -> list[Path]:
    """Every plot of the sweep in `table`, written to `out`; returns the paths."""
    points = aggregate(table, ["refill", *spec.knobs],
                       [METRIC, "freshness_p95_s", "max_gap_s", "http_429"])
    best = {r: points.loc[g[METRIC].idxmax()] for r, g in points.groupby("refill", sort=False)}
    paths = []
    for axis in spec.axes:
        paths.append(_save(curve(table, points, best, spec, axis), out,
                           f"curve_{axis.name}", fmt))
    for a, b in itertools.combinations(spec.axes, 2):
        paths.append(_save(heatmap(points, best, spec, a, b), out,
                           f"heatmap_{a.name}_{b.name}", fmt))
    jobs = {job.run_id: job for job in spec.jobs()}
    if set(table["run_id"]) <= jobs.keys():
        for refill in best:
            paths.append(_save(sawtooth(table, spec, jobs, refill), out,
                               f"sawtooth_refill{refill:g}", fmt))
    else:
        print("no sawtooth: these results are of runs the simulator no longer describes "
              "the same way (its settings changed); run the sweep again", file=sys.stderr)
    paths.append(_save(pareto(points, spec), out, "pareto", fmt))
    return paths


def _levels(points, axis):
    """An axis's values as stored, in the order of the grid."""
    return list(dict.fromkeys(points[axis.keys[0]]))


def _slice(points, best, spec: Spec, refill, keep):
    """The points at `refill` whose knobs outside `keep` equal the best point's."""
    rows = points[points["refill"] == refill]
    for axis in spec.axes:
        if axis not in keep:
            rows = rows[rows[axis.keys[0]] == best[refill][axis.keys[0]]]
    return rows


def _others(row, spec: Spec, keep=()) -> str:
    """The knob values of `row` (a point or a run) outside `keep`, as ``name=value`` text."""
    return ", ".join(f"{a.name}={_fmt(row[a.keys[0]])}" for a in spec.axes if a not in keep)


def _fmt(value) -> str:
    """A table cell as the grid wrote it (pandas turns 4 into 4.0 in a mixed row)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def curve(table, points, best, spec: Spec, axis):
    fig, ax = _figure()
    numeric = axis.numbers() is not None
    levels = _levels(points, axis)
    where = {v: i for i, v in enumerate(levels)}
    for colour, refill in zip(_colours(), best):
        rows = _slice(points, best, spec, refill, [axis])
        rows = rows.sort_values(axis.keys[0], key=lambda column: column.map(where))
        x = [float(v) if numeric else where[v] for v in rows[axis.keys[0]]]
        mean, half = rows[METRIC].to_numpy(), rows[f"{METRIC}_ci"].fillna(0).to_numpy()
        others = _others(best[refill], spec, [axis])
        ax.plot(x, mean, "o-", color=colour,
                label=f"{refill:g} tokens/min" + (f", others at best ({others})" if others else ""))
        ax.fill_between(x, mean - half, mean + half, color=colour, alpha=0.2)
        if len(spec.axes) > 1:
            marginal = table[table["refill"] == refill].groupby(axis.keys[0])[METRIC].mean()
            marginal = marginal.loc[levels]
            xs = [float(v) if numeric else where[v] for v in marginal.index]
            ax.plot(xs, marginal, "--", color=colour, alpha=0.7,
                    label=f"{refill:g} tokens/min, mean over the other knobs")
    if axis.geometric:
        ax.set_xscale("log", base=2)
    if not numeric:
        ax.set_xticks(range(len(levels)), [_fmt(v) for v in levels])
    elif axis.geometric:
        ax.set_xticks([float(v) for v in levels], [_fmt(v) for v in levels])
    ax.set_xlabel(label(axis.keys))
    ax.set_ylabel(f"{THROUGHPUT} (mean of {len(spec.seeds)} seeds; band: 95 % interval)")
    ax.set_title(f"Throughput against {axis.name}, {spec.hours:g} simulated hours")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    return fig


def heatmap(points, best, spec: Spec, a, b):
    from matplotlib.figure import Figure

    rates = list(best)
    fig = Figure(figsize=(6.5 * len(rates), 5), layout="constrained")
    xs, ys = _levels(points, a), _levels(points, b)
    for n, refill in enumerate(rates, 1):
        ax = fig.add_subplot(1, len(rates), n)
        rows = _slice(points, best, spec, refill, [a, b])
        cells = rows.pivot_table(index=b.keys[0], columns=a.keys[0], values=METRIC,
                                 aggfunc="first").reindex(index=ys, columns=xs)
        image = ax.imshow(cells.to_numpy(dtype=float), origin="lower", aspect="auto",
                          cmap="viridis")
        for (i, j), value in np.ndenumerate(cells.to_numpy(dtype=float)):
            if np.isnan(value):
                continue
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize="x-small",
                    color=text_colour(image.cmap(image.norm(value))))
        ax.set_xticks(range(len(xs)), [_fmt(v) for v in xs])
        ax.set_yticks(range(len(ys)), [_fmt(v) for v in ys])
        ax.set_xlabel(label(a.keys))
        ax.set_ylabel(label(b.keys))
        others = _others(best[refill], spec, [a, b])
        ax.set_title(f"{refill:g} tokens/min" + (f" ({others})" if others else ""),
                     fontsize="medium")
        fig.colorbar(image, ax=ax, label=f"{THROUGHPUT} (mean of {len(spec.seeds)} seeds)")
    return fig


def text_colour(rgba) -> str:
    """Black or white, whichever reads better on a cell of colour `rgba`: black on a
    cell whose relative luminance (WCAG 2) is above 0.179, where the two contrast alike."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "black" if luminance > 0.179 else "white"


def sawtooth(table, spec: Spec, jobs: dict, refill):
    from matplotlib.figure import Figure

    rows = table[table["refill"] == refill]
    picks = [("best", rows.loc[rows[METRIC].idxmax()]), ("worst", rows.loc[rows[METRIC].idxmin()])]
    fig = Figure(figsize=(11, 7), layout="constrained")
    for n, (name, row) in enumerate(picks, 1):
        job = jobs[row["run_id"]]
        samples = simulate(job.config, job.scenario).recorder.samples
        ax = fig.add_subplot(2, 1, n)
        t = [s.t / 3600 for s in samples]
        # the truth on top of the belief: where they agree, the server's line shows
        ax.step(t, [s.server_balance for s in samples], where="post", lw=1.0, color="C0",
                zorder=3, label="server balance (truth)")
        ax.plot(t, [s.estimate for s in samples], lw=0.8, color="C1", ls=(0, (4, 2)),
                zorder=2, label="client estimate (belief)")
        ax.axhline(job.config.burst_target(refill), ls="--", color="grey", lw=0.8,
                   label="burst target")
        ax.axhline(job.config.min_token_threshold, ls=":", color="grey", lw=0.8,
                   label="minimum threshold")
        ax.set_title(f"{name} run at {refill:g} tokens/min: {row[METRIC]:.2f} deals/h, "
                     f"seed {_fmt(row['seed'])} ({_others(row, spec)})", fontsize="medium")
        ax.set_xlabel("simulated time (h)")
        ax.set_ylabel("balance (tokens)")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0)  # beside the axes, covering none of the data
    return fig


def pareto(points, spec: Spec):
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, ax = _figure()
    drawn = False
    for colour, (refill, rows) in zip(_colours(), points.groupby("refill", sort=False)):
        rows = rows.dropna(subset=["freshness_p95_s"])
        if rows.empty:
            continue
        fresh, rate = rows["freshness_p95_s"].to_numpy() / 60, rows[METRIC].to_numpy()
        ax.scatter(fresh, rate, s=12, color=colour, alpha=0.4,
                   label=f"{refill:g} tokens/min: grid points")
        front = front_of(list(zip(fresh, rate)))
        ax.plot(*zip(*front), "o-", color=colour, drawstyle="steps-post",
                label=f"{refill:g} tokens/min: Pareto front")
        drawn = True
    if drawn:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no grid point stored a deal listed during its runs,\n"
                "so recent-deal freshness is undefined", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("recent-deal freshness p95 (min; listed at Keepa → stored), lower is better")
    ax.set_ylabel(f"{THROUGHPUT} (mean of {len(spec.seeds)} seeds), higher is better")
    ax.set_title("Throughput against freshness")
    return fig


def front_of(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(lower-is-better, higher-is-better) pairs that no other pair beats on both."""
    front, top = [], float("-inf")
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > top:
            front.append((x, y))
            top = y
    return front


def draw_comparison(points, seeds: int, hours: float, out: Path, fmt: str = "png") -> Path:
    """The plot of a comparison's `points` (`sim.compare.summarize`), written to `out`."""
    return _save(bound_curves(points, seeds, hours), out, "fraction_of_bound", fmt)


def bound_curves(points, seeds: int, hours: float):
    """Fraction of the bound against refill rate (log x), one line per preset, with
    the 95 % interval over the seeds as error bars. The legend stands beside the
    axes, so it covers no line. Presets often tie (every one that stores the whole
    market reaches 1), so each preset's points are moved a little sideways (at most
    ±0.05 of a decade) and marked apart: a tie shows as a row of points."""
    fig, ax = _figure()
    presets = points.groupby("preset", sort=False)
    markers = itertools.cycle("osD^vP*")  # 7 against 10 colours: pairs repeat after 70
    for n, colour, marker, (preset, rows) in zip(itertools.count(), _colours(), markers,
                                                 presets):
        rows = rows.sort_values("refill")
        dodge = 10 ** (0.1 * ((n + 0.5) / presets.ngroups - 0.5))
        ax.errorbar(rows["refill"] * dodge, rows["fraction_of_bound"],
                    yerr=rows["fraction_of_bound_ci"].fillna(0), fmt=f"{marker}-",
                    color=colour, capsize=3, lw=1, alpha=0.85, label=preset)
    ax.axhline(1.0, ls="--", color="grey", lw=0.8, label="the bound")
    rates = sorted(points["refill"].unique())
    ax.set_xscale("log")
    ax.set_xticks(rates, [f"{r:g}" for r in rates])
    ax.xaxis.set_minor_formatter("")
    ax.set_ylim(0, max(1.05, ax.get_ylim()[1]))  # the autoscaled top holds every bar
    ax.set_xlabel("refill rate (tokens/min, log scale; presets drawn slightly apart)")
    ax.set_ylabel("fraction of bound (deals stored per hour / bound)")
    ax.set_title(f"Share of the bound by preset: mean of {seeds} seeds, {hours:g} simulated "
                 "hours a run; bars: 95 % interval", fontsize="medium")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5.5), layout="constrained")
    return fig, fig.add_subplot()


def _colours():
    return itertools.cycle([f"C{i}" for i in range(10)])


def _save(fig, out: Path, name: str, fmt: str) -> Path:
    safe = re.sub(r"[^\w.+-]", "_", name)
    path = Path(out) / f"{safe}.{fmt}"
    fig.savefig(path, format=fmt, dpi=120)
    return path
