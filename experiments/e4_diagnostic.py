"""Finding 4: does the diagnostic report the target the manager really waits for?

The seed's ``check_pause_status.py`` printed "Waiting for 280" while the
manager waited for 80; the fix copied the manager's rule into the script,
which went stale at the next change of the rule. Here every run saves its
TokenManager's belief as ``collector live`` does, and ``collector status``
reports from it, at each refill rate and under two rules.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner
from matplotlib.figure import Figure

from collector.cli import main as collector_main
from collector.config import Config, StepRule, read_toml_table
from collector.live.sqlite import SQLiteStorage
from collector.live.stats import LiveStats
from sim.engine import simulate
from sim.keepa import ServerSettings
from sim.settings import Scenario

from .runner import CONFIGS, Context, Finding, save

SEED_SCRIPT_BEFORE_FIX = 280.0
"""What check_pause_status.py printed before 3a05a87, whatever the rate."""
SEED_SCRIPT_COPY = StepRule.parse("80<10,280")
"""The rule 3a05a87 copied into check_pause_status.py: frozen there, not asked for."""


def run(ctx: Context) -> Finding:
    path = CONFIGS / "e4_diagnostic.toml"
    plan = read_toml_table(path, "experiment")
    rows = []
    for rule in plan["rules"]:
        for rate in plan["rates"]:
            config = Config.load(file=path, overrides=[f"burst_threshold={rule}"])
            manager, reported = _status(config, float(rate), float(ctx.hours or plan["hours"]),
                                        ctx.out / "status")
            rows.append({"rule": rule, "rate": float(rate), "manager": manager,
                         "status": reported, "before_fix": SEED_SCRIPT_BEFORE_FIX,
                         "copy": SEED_SCRIPT_COPY.at(rate)})
    measured = {
        "status_mismatches": sum(r["status"] != r["manager"] for r in rows),
        "before_fix_mismatches": sum(r["before_fix"] != r["manager"] for r in rows
                                     if r["rule"] == plan["rules"][0]),
        "stale_copy_mismatches": sum(r["copy"] != r["manager"] for r in rows
                                     if r["rule"] == plan["rules"][1]),
        "rates": len(plan["rates"]),
    }
    answer = (
        f"`collector status` reports the manager's own target at all {len(rows)} points "
        f"({measured['status_mismatches']} mismatches): it rebuilds the TokenManager from the "
        "saved belief and asks it, so there is no second copy of the rule to go stale. The "
        f"seed's script before the fix printed 280 and was wrong at "
        f"{measured['before_fix_mismatches']} of {len(plan['rates'])} rates (all below 10/min); "
        "the fix's copy of the rule agreed on 02-08 but, once the manager's rule became "
        f"'{plan['rules'][1]}' (V10), was wrong at {measured['stale_copy_mismatches']} of "
        f"{len(plan['rates'])} rates.")
    table = ["| rule | refill (tokens/min) | TokenManager target | `collector status` "
             "| seed script before fix | seed script's copy |", "|---|---|---|---|---|---|"]
    table += [f"| {r['rule']} | {r['rate']:g} | {r['manager']:g} | {r['status']:g} | "
              f"{r['before_fix']:g} | {r['copy']:g} |" for r in rows]
    return Finding(4, "The diagnostic's target", "Does the diagnostic report the target the "
                   "manager waits for?", answer, measured, "\n".join(table),
                   [save(_figure(rows, plan["rules"]), ctx, "e4_diagnostic")])


def _status(config: Config, rate: float, hours: float, folder: Path) -> tuple[float, float]:
    """Simulate, save the final belief as the live loop does, and ask `collector status`."""
    result = simulate(config, Scenario(hours=hours, seed=0, server=ServerSettings(rate=rate)))
    tokens, now = result.collector.tokens, result.collector.runtime.now()
    offset = time.time() - now
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"{config.burst_threshold}-{rate:g}.sqlite".replace("<", "lt")
    db.unlink(missing_ok=True)
    storage = SQLiteStorage(db)
    try:
        run = storage.begin_run("simulated", 1, config.to_dict())
        storage.heartbeat(run, tokens.export(offset), LiveStats().as_dict(offset))
    finally:
        storage.close()
    out = CliRunner().invoke(collector_main, ["status", "--db", str(db), "--json"])
    if out.exit_code != 0:
        raise RuntimeError(f"collector status failed: {out.stderr or out.stdout}")
    return tokens.target(), float(json.loads(out.stdout)["tokens"]["target"])


def _figure(rows, rules) -> Figure:
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    for ax, rule in zip(fig.subplots(1, 2, sharey=True), rules):
        mine = [r for r in rows if r["rule"] == rule]
        rates = [r["rate"] for r in mine]
        ax.step(rates, [r["manager"] for r in mine], where="post", lw=2,
                label="TokenManager's target")
        ax.plot(rates, [r["status"] for r in mine], "o", label="`collector status` reports")
        ax.step(rates, [r["before_fix"] for r in mine], where="post", ls=":",
                label="seed script before the fix")
        ax.step(rates, [r["copy"] for r in mine], where="post", ls="--",
                label="seed script's copy of the rule")
        ax.set_xscale("log")
        ax.set_xlabel("refill rate learned from the envelope (tokens/min)")
        ax.set_ylabel("burst (recharge) target (tokens)")
        ax.set_title(f"manager's rule {rule}")
    # one legend for both panels, below them: inside, it covered a point
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=4,
               fontsize="small")
    return fig
