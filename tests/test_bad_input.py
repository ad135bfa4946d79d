"""Faults a new user met (issue 14, item 4): each is one line and exit status 2, or
now does what the file says."""

from __future__ import annotations

import pytest


@pytest.fixture
def toml(tmp_path):
    def write(text: str) -> str:
        path = tmp_path / "c.toml"
        path.write_text(text)
        return str(path)

    return write


@pytest.mark.parametrize("text, needle", [
    ("[colector]\nchunk_size = 2\n", "unknown table [colector]; expected [collector]"),
    ("chunk_size = 2\n[collector]\nbatch_size = 2\n",
     "chunk_size is outside any table; knobs go under [collector]"),
])
def test_a_knob_the_file_would_lose_is_one_line_and_exit_2(sim, toml, text, needle):
    result = sim("run", "--config", toml(text), "--hours", "1")
    assert result.exit_code == 2
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_files_refill_rate_is_the_plan_unless_refill_says_otherwise(sim_json, sim, toml,
                                                                     tmp_path):
    path = toml('[collector]\npreset = "fixed"\nrefill_rate = 20\n')
    at_file = sim_json("--config", path, "--hours", "2")
    assert at_file["tokens_generated"] == pytest.approx(20 * 120, abs=20)
    told = sim_json("--config", path, "--hours", "2", "--refill", "5")
    assert told["tokens_generated"] == pytest.approx(5 * 120, abs=5)
    swept = sim("sweep", "--config", path, "--grid", "chunk_size=2,4", "--hours", "0.5",
                "--seeds", "1", "--no-plots", "--out", str(tmp_path / "sweep"))
    assert swept.exit_code == 0 and "20 tokens/min" in swept.stdout


def test_a_port_out_of_range_is_one_line_and_exit_2(sim):
    result = sim("serve", "--port", "99999")
    assert result.exit_code == 2 and "99999 is not in the range 0<=x<=65535" in result.stderr
    assert "Traceback" not in result.stderr
