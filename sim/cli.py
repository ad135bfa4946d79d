"""The ``sim`` command: run, sweep, tune, compare, serve and plot the collector in simulation."""

from __future__ import annotations

import csv
import json
import math

import click

from collector.cli_support import OneLineGroup, config_options
from sim.engine import simulate
from sim.settings import build, plan_refill


@click.group(cls=OneLineGroup, name="sim")
def main() -> None:
    """Simulate a Keepa deals collector on a virtual clock against a mock Keepa."""


@main.command()
@config_options()
@click.option("--refill", type=float, help="Plan refill rate, tokens/minute [default: the "
              "config file's refill_rate; 5 for every preset].")
@click.option("--hours", type=float, default=24.0, show_default=True, help="Simulated hours.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for every draw.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--timeseries", type=click.Path(dir_okay=False),
              help="Write the per-minute bucket samples to this CSV file.")
def run(preset, config_file, assignments, refill, hours, seed, as_json, timeseries) -> None:
    """Run one simulation and print its summary."""
    refill = plan_refill(refill, preset, config_file)
    config, scenario = build(preset, config_file, assignments, refill, hours, seed)
    result = simulate(config, scenario)
    if timeseries:
        write_samples(timeseries, result.recorder.samples)
    summary = tidy(result.summary)
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        click.echo(render(summary, hours, refill))


def tidy(value):
    """Round floats so that printed figures are stable and readable."""
    if isinstance(value, float):
        return value if math.isinf(value) else round(value, 6)
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    return value


def write_samples(path: str, samples) -> None:
    try:
        with open(path, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["t_s", "server_balance", "estimate", "mode", "stored"])
            writer.writerows((s.t, s.server_balance, round(s.estimate, 3), s.mode, s.stored)
                             for s in samples)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None


def render(s: dict, hours: float, refill: float) -> str:
    def fmt(x, unit=""):
        return "-" if x is None else f"{x:,.1f}{unit}" if isinstance(x, float) else f"{x:,}{unit}"

    lines = [
        f"{hours:g} h at {refill:g} tokens/min",
        f"  deals stored      {fmt(s['deals_stored'])} ({fmt(s['deals_per_hour'])}/h), "
        f"{fmt(s['deals_processed'])} examined",
        f"  API calls         {fmt(s['api_calls'])} ({s['calls_per_minute']:.2f}/min), "
        f"{fmt(s['token_calls'])} /token",
        f"  tokens            {fmt(s['tokens_consumed'])} charged of "
        f"{fmt(s['tokens_generated'])} generated; utilization {s['token_utilization']:.1%}; "
        f"{fmt(s['tokens_lost_to_cap'])} lost to the cap"
        + (f"; {fmt(s['token_deficit'])} owed at the end" if s["token_deficit"] else ""),
        f"  reserved/actual   {fmt(s['tokens_reserved'])} reserved against "
        f"{fmt(s['tokens_consumed'])} charged",
        f"  bucket            min {fmt(s['min_balance'])}, {s['http_429']} x 429, "
        f"recharging {s['recharge_fraction']:.0%} of the time",
        f"  gaps, freshness   longest gap {fmt(s['max_gap_s'], ' s')}; new deals stored "
        f"{s['new_deals_stored']}/{s['new_deals_listed']}, p50 {fmt(s['freshness_p50_s'], ' s')}"
        f", p95 {fmt(s['freshness_p95_s'], ' s')}",
        f"  bound             {fmt(s['bound_deals_per_hour'])} deals/h, bound by "
        f"{s['bound_by']} (market {fmt(s['bound_market_per_hour'])}, tokens "
        f"{fmt(s['bound_tokens_per_hour'])}, latency {fmt(s['bound_latency_per_hour'])}); "
        f"this run {s['fraction_of_bound']:.0%} of it",
        f"  tokens per deal   {fmt(s['tokens_per_deal'])} (at the fewest "
        f"{fmt(s['bound_tokens_per_deal'])}); data age p95 {fmt(s['stale_p95_s'], ' s')}, "
        f"{s['deals_refreshed']:,} refreshed",
        "  per task          calls/min  tokens  stored  runs  skipped",
    ]
    for name, t in s["tasks"].items():
        lines.append(f"    {name:<15} {t['calls_per_minute']:9.2f} {t['tokens_consumed']:7.0f}"
                     f" {t['deals_stored']:7d} {t['runs']:5d} {t['skipped']:8d}")
    if "restarts" in s:  # sim.restarts: only when restarts or deploys are scheduled
        lines.append(f"  restarts          {s['restarts']} ({s['deploys']} deploys); "
                     f"{s['unread_calls']} calls left in flight, {fmt(s['unread_tokens'])} "
                     "tokens charged unread")
    lines.append(f"  wall              {s['wall_s']:.2f} s")
    return "\n".join(lines)


from sim.serve import serve  # noqa: E402 - registered after the group exists

main.add_command(serve)
from sim.sweep_cli import plot, sweep, tune  # noqa: E402 - sweep, plot and tune live there

for command in (sweep, plot, tune):
    main.add_command(command)
from sim.compare_cli import compare  # noqa: E402 - presets side by side (sim compare)

main.add_command(compare)
