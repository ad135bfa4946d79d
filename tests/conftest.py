"""Shared helpers: run the `sim` command in process and parse its JSON."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sim.cli import main as sim_main


@pytest.fixture
def sim():
    """Call ``sim ARGS...``; returns click's Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(sim_main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def sim_json(sim):
    def run(*args: str) -> dict:
        result = sim("run", "--json", *args)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    return run
