"""Each experiment's qualitative claim, asserted with the margin it measured.

The experiments run in full (24 simulated hours, their own seed counts) on two
workers; the margins below leave room for seed noise around what
``python -m experiments`` printed when they were written (see report.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import collector
from experiments import (e1_spacing, e2_chunking, e3_starvation, e4_diagnostic,
                         e5_burst_target, e6_restarts)
from experiments.__main__ import main as experiments_main
from experiments.runner import Context


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Context(tmp_path_factory.mktemp("experiments"), workers=2, progress=False)


def test_1_spacing_binds_only_where_calls_are_cheaper_than_the_refill(ctx):
    m = e1_spacing.run(ctx).measured
    # at 5 tokens/min tokens bind, nearly: under the seed's own rules every new deal takes
    # three calls (its seller looked up whether it passes or not), so 60 s spacing costs a
    # little with batches of 1 (measured 0.89, and 0.89 of the tokens) and nothing with 4
    assert m["ratio_60_to_1_at_5_batch_1"] > 0.8
    assert m["ratio_60_to_1_at_5_batch_4"] > 0.9
    assert m["utilization_60_at_5_batch_1"] > 0.8
    # at 20 tokens/min with the seed's batches of 1 it costs most of it (measured 0.21)
    assert m["ratio_60_to_1_at_20_batch_1"] < 0.7
    assert m["backfill_calls_per_min_60_at_20_batch_1"] <= 1.0


def test_2_chunks_cut_commits_and_matter_under_heavy_overhead(ctx):
    m = e2_chunking.run(ctx).measured
    assert m["commits_per_deal_chunk_1"] > 0.95 and m["commits_per_deal_chunk_4"] < 0.3
    # with the seed's light overhead tokens bind: no gain (measured 1.00x at 5, 0.99x at 20)
    assert 0.9 < m["ratio_4_to_1_at_5_overhead_1.5"] < 1.1
    assert 0.9 < m["ratio_4_to_1_at_20_overhead_1.5"] < 1.1
    # 60 s a chunk at 20 tokens/min: chunks of 4 win (measured 1.95x)
    assert m["ratio_4_to_1_at_20_overhead_60"] > 1.2


def test_3_triggered_runs_take_tokens_from_the_backfiller(ctx):
    m = e3_starvation.run(ctx).measured
    # under the seed's own rules (0.75 and 0.79 under the project's, before issue 13)
    assert m["seed_before_backfill_tokens_ratio"] < 0.9  # measured 0.84
    assert m["seed_before_all_deals_ratio"] < 0.93  # measured 0.87
    assert m["seed_before_recent_runs_ratio"] > 3  # measured 4.6
    assert m["seed_before_skipped_per_run"] < 1  # measured 0.20: the runs are short
    # a recent task that finds new deals runs long: triggers skip, deals hold (1.01x)
    assert m["fixed_skipped_per_run"] > 4  # measured 10.7
    assert 0.9 < m["fixed_all_deals_ratio"] < 1.1


def test_4_status_reports_the_managers_own_target(ctx):
    m = e4_diagnostic.run(ctx).measured
    assert m["status_mismatches"] == 0
    assert m["before_fix_mismatches"] == 3 and m["stale_copy_mismatches"] == 3


def test_4_the_burst_rule_is_written_once():
    """No module re-states the seed's 80/280 rule: config.py holds it, all else asks."""
    root = Path(collector.__file__).parent
    holders = [p.name for p in root.rglob("*.py")
               if re.search(r"\b(80|280)\b", p.read_text()) and "<10" in p.read_text()]
    assert holders == ["config.py"]
    status = (root / "live" / "status.py").read_text()
    assert not re.search(r"\b(80|280|10)\b", status)


def test_5_a_high_target_buys_nothing_at_5_tokens_a_minute(ctx):
    m = e5_burst_target.run(ctx).measured
    assert 0.8 < m["ratio_280_to_80_at_5"] < 1.1  # measured 1.00
    assert m["gap_280_at_5_min"] > m["gap_80_at_5_min"]  # measured 60 against 34 min


def test_6_restarts_below_a_page_checkpoint_stall_the_backfiller(ctx):
    m = e6_restarts.run(ctx).measured
    # hourly restarts at 5 tokens/min: 47 deals in 48 h per page against 247 per chunk
    assert m["page_to_chunk_1h"] < 0.4  # measured 0.19
    assert m["page_to_chunk_0.5h"] < m["page_to_chunk_1h"] < m["page_to_chunk_8h"]
    assert m["page_to_chunk_never"] == 1  # without restarts: the same runs' figures
    assert m["chunk_stored_1h"] > 0.6 * m["chunk_stored_never"]  # measured 0.81


def test_the_report_renders_with_every_figure(ctx):
    assert experiments_main(["--out", str(ctx.out), "--workers", "2"]) == 0
    report = (ctx.out / "report.md").read_text()
    figures = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert len(figures) == 7 and all((ctx.out / f).stat().st_size > 10_000 for f in figures)
    for number in range(1, 7):
        assert f"## {number}. " in report


def test_bad_experiment_number_is_one_line_exit_2(capsys):
    assert experiments_main(["--only", "9"]) == 2
    assert capsys.readouterr().err.strip() == "experiments: error: no experiment 9"
