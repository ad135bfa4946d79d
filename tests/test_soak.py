"""A short soak (issue 14, item 5): ``collector live --preset adaptive`` for 35 s at
4000 tokens/min against the mock with 5xx errors, dropped connections and slow
calls on (experiments/bench_soak.py, which runs it for minutes and prints the
figures). Memory stays flat, no chunk of the backfill walk is lost, and the
failures cost bounded retries."""

from __future__ import annotations

import pytest

from collector.config import Config
from experiments.bench_soak import PRESET, soak

SECONDS = 35


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return soak(SECONDS, tmp_path_factory.mktemp("soak"))


def test_the_soak_ends_cleanly(result):
    assert result.exit_code == 0 and result.outcome.startswith("stopped after")
    assert "Traceback" not in result.stderr


def test_memory_stays_flat(result):
    """The collector's RSS in the last third of the run is within 10 % of its largest
    value in the first third (start-up, imports and the first chunks)."""
    assert len(result.rss) >= 20
    first, last = result.thirds()
    assert last <= 1.10 * first, f"RSS grew from {first} kB to {last} kB"


def test_no_chunk_is_lost(result):
    """The cursor never goes back; every deal before its final place was fetched, every
    profitable one of them is stored, none twice and nothing else."""
    assert result.cursors == sorted(result.cursors), f"cursor went back: {result.cursors}"
    assert result.cursors[-1] >= 100
    assert (result.missed, result.missing, result.twice, result.stray) == (0, 0, 0, 0)


def test_faults_were_dealt_and_cost_bounded_retries(result):
    served, stats = result.served, result.stats
    assert served["500"] + served["503"] + served["dropped"] > 0, served
    assert stats["failures"] > 0
    assert result.retries_per_call() < 0.3, stats
    # a call gives up after max_retries + 1 failures; its task's next run tries again
    assert 0 < stats["max_failure_run"] <= Config.load(PRESET).max_retries + 1
    assert result.gave_up <= stats["api_calls"] / 50, result.stderr
