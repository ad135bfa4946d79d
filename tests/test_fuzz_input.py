"""Bad input on every command (issue 14, item 4): one line naming the problem, exit
status 2, no traceback, and nothing written.

Every collector knob (`collector.config.keys`) and every ``server.*`` and
``market.*`` field gets values of the wrong type and out of range (negative,
zero where > 0, nan, inf, huge), on every command that reads knobs; unknown
keys and unreadable config files too. The work a command would start (a run,
a sweep's pool, a server, a live collector) is replaced by a trap that fails
the test, so a bad value accepted is a failure here, never a long run.
"""

from __future__ import annotations

import dataclasses
import os
import typing

import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import cli as collector_cli
from collector.config import AT_MOST, Config, keys
from collector.parsing import StepRule, base_type, is_optional
from sim import cli as sim_cli
from sim.keepa import MarketSettings, ServerSettings
from sim.settings import MARKET_AT_MOST

KNOB_COMMANDS = {  # argv before the --set/--config options, for each command reading knobs
    "run": ["run", "--hours", "1"],
    "sweep": ["sweep", "--hours", "1", "--seeds", "1", "--grid", "chunk_size=2,4",
              "--no-plots", "--out", "out"],
    "tune": ["tune", "--hours", "1", "--budget", "1", "--out", "out/t.toml"],
    "compare": ["compare", "--refill", "5", "--hours", "1", "--seeds", "1", "--out", "out"],
    "serve": ["serve", "--port", "0"],
    "live": ["live", "--db", "out/d.sqlite", "--api-url", "http://127.0.0.1:9"],
}
WORLD_ONLY = {"serve"}  # takes server.* and market.* only
NO_CONFIG = {"tune", "compare", "serve"}  # no --config option


class Started(Exception):
    """A command got past its checks and began its work."""


def _trap(*args, **kwargs):
    raise Started


@pytest.fixture(autouse=True)
def traps(monkeypatch):
    monkeypatch.setattr(sim_cli, "simulate", _trap)
    monkeypatch.setattr("sim.sweep_cli.executor", _trap)
    monkeypatch.setattr("sim.serve.start", _trap)
    monkeypatch.setattr("collector.live.main.run_live", _trap)
    monkeypatch.setenv("KEEPA_API_KEY", "fuzz")


def invoke(argv: list[str]):
    """Run `argv` (``sim ...`` or, for live/status, ``collector ...``) in an empty cwd;
    the result and what the cwd holds afterwards."""
    runner = CliRunner()
    main = collector_cli.main if argv[0] in ("live", "status") else sim_cli.main
    with runner.isolated_filesystem() as cwd:
        result = runner.invoke(main, argv, catch_exceptions=False)
        left = sorted(os.listdir(cwd))
    return result, left


def assert_rejected(argv: list[str], needle: str = "") -> None:
    try:
        result, left = invoke(argv)
    except Started:
        pytest.fail(f"accepted: {argv}")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (argv, result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, (argv, result.stderr)
    assert needle in lines[0], (argv, lines[0])
    assert left == [], f"{argv} wrote {left}"


# -- bad values per knob --------------------------------------------------------------------
def _bad_values(kind, check: str, choices: tuple, bounded: float | None) -> list[str]:
    """Strings a knob of this type and check must refuse."""
    base = base_type(kind)
    bad = {int: ["abc", "1.5", "nan", "inf", "1e3x"], float: ["abc", "nan", "inf", "-inf", "1,5"],
           bool: ["maybe", "2", "ja"], StepRule: ["a<b", "50<20,10<10,5", "nan", "<"],
           str: []}[base]
    if not is_optional(kind) and base is not str:
        bad.append("")
    if base in (int, float):
        bad += {">0": ["0", "-1"], ">=0": ["-1"]}.get(check, [])
        if bounded is not None:
            bad.append(str(int(bounded) * 1000 + 1))
    if choices:
        bad.append("bogus")
    return bad


def _collector_cases() -> list[tuple[str, str]]:
    fields = {f.name: f for f in dataclasses.fields(Config)}
    hints = typing.get_type_hints(Config)
    cases = []
    for key in keys():
        f = fields[key]
        bound = (100 if key.endswith("batch_size") or key.endswith("_offers")
                 else AT_MOST.get(key))
        for value in _bad_values(hints[key], f.metadata["check"], f.metadata["choices"], bound):
            cases.append((key, value))
    return cases


SHARES = {"drop", "slow", "offers_fail", "rate_spike_share", "survivor_share",
          "many_offers_share", "offers_fresh_share", "rating_fresh_share"}
POSITIVE = {"rate_spike", "sellers"}
NONNEGATIVE = {"flow_reduction", "latency_scale", "slow_s", "rate_noise", "lockout_s",
               "token_cost", "lockout_below", "phase_ms", "backlog", "arrivals_per_hour",
               "roughness_min"}
TEXT_CHECKED = {"errors": ["500", "500:2", "abc:0.1", "500:nan"],
                "outages": ["abc", "10+", "-5+10", "10+nan"]}


def _world_cases() -> list[tuple[str, str]]:
    cases = []
    for prefix, cls in (("server", ServerSettings), ("market", MarketSettings)):
        hints = typing.get_type_hints(cls)
        for name in hints:
            if name == "rate":
                continue
            check = ">0" if name in POSITIVE else ">=0" if name in NONNEGATIVE else ""
            bound = (1 if name in SHARES else 100 if name == "offers_max_asins"
                     else MARKET_AT_MOST.get(name) if prefix == "market" else None)
            values = _bad_values(hints[name], check, (), bound) + TEXT_CHECKED.get(name, [])
            if name in SHARES:
                values.append("-0.1")
            cases += [(f"{prefix}.{name}", v) for v in values]
    return cases


COLLECTOR_CASES = _collector_cases()
WORLD_CASES = _world_cases()


@pytest.mark.parametrize("key, value", COLLECTOR_CASES + WORLD_CASES)
def test_every_bad_knob_value_is_one_line_and_exit_2_on_sim_run(key, value):
    assert_rejected([*KNOB_COMMANDS["run"], "--set", f"{key}={value}"], key.split(".")[-1])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(COLLECTOR_CASES + WORLD_CASES),
       command=st.sampled_from(sorted(KNOB_COMMANDS)))
def test_a_bad_knob_value_is_refused_by_every_command(case, command):
    key, value = case
    if command in WORLD_ONLY and "." not in key:
        key, value = "server.drop", "2"
    assert_rejected([*KNOB_COMMANDS[command], "--set", f"{key}={value}"])


def _checked(check: str) -> list[str]:
    hints = typing.get_type_hints(Config)
    return [f.name for f in dataclasses.fields(Config) if f.metadata["check"] == check
            and base_type(hints[f.name]) in (int, float)]


@settings(max_examples=80, deadline=None)
@given(data=st.data(), check=st.sampled_from([">0", ">=0"]))
def test_numbers_out_of_range_are_refused(data, check):
    """Any number <= 0 (or < 0), however written, and any beyond float's range."""
    key = data.draw(st.sampled_from(_checked(check)))
    top, whole_top = (0, 0) if check == ">0" else (-1e-9, -1)
    number = data.draw(st.one_of(st.floats(max_value=top, allow_nan=False),
                                 st.integers(max_value=whole_top).map(float),
                                 st.sampled_from([1e400, -1e400])))
    text = data.draw(st.sampled_from([repr(number), f"{number:e}", str(number)]))
    if base_type(typing.get_type_hints(Config)[key]) is int and float(text).is_integer():
        text = str(int(float(text))) if abs(float(text)) < 1e300 else text
    assert_rejected([*KNOB_COMMANDS["run"], "--set", f"{key}={text}"], key)


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(keys()),
       value=st.one_of(st.text(max_size=6), st.lists(st.integers(), max_size=2),
                       st.dictionaries(st.text(max_size=2), st.integers(), max_size=1)),
       command=st.sampled_from(sorted(set(KNOB_COMMANDS) - NO_CONFIG)))
def test_a_config_file_of_the_wrong_type_is_refused(tmp_path_factory, key, value, command):
    hints = typing.get_type_hints(Config)
    if base_type(hints[key]) is str and isinstance(value, str):
        value = [value]  # a string is a str knob's type: its choices are fuzzed above
    path = tmp_path_factory.mktemp("c") / "c.toml"
    path.write_text(tomli_w.dumps({"collector": {key: value}}))
    try:
        Config().updated({key: value})
    except ValueError:
        assert_rejected([*KNOB_COMMANDS[command], "--config", str(path)])


@settings(max_examples=40, deadline=None)
@given(value=st.one_of(st.floats(max_value=0), st.just(float("inf")), st.just(float("nan")),
                       st.text(alphabet="abc,:+x-", min_size=1, max_size=5)),
       option=st.sampled_from(["--hours", "--refill"]),
       command=st.sampled_from(["run", "sweep", "tune", "compare"]))
def test_bad_hours_and_refill_are_refused(value, option, command):
    argv = [a for a in KNOB_COMMANDS[command]]
    if option in argv:
        argv[argv.index(option) + 1] = str(value)
    else:
        argv += [option, str(value)]
    assert_rejected(argv)


@pytest.mark.parametrize("key", ["chunk_sise", "server.bogus", "market.bogus", "server.rate",
                                 "bogus.key", ""])
@pytest.mark.parametrize("command", sorted(KNOB_COMMANDS))
def test_unknown_keys_are_refused(key, command):
    if command in WORLD_ONLY and "." not in key:
        key = "server." + key
    assert_rejected([*KNOB_COMMANDS[command], "--set", f"{key}=1"])


# -- unreadable files -----------------------------------------------------------------------
FILES = {
    "directory": lambda p: (p.mkdir(), p)[1],
    "missing": lambda p: p,
    "binary": lambda p: (p.write_bytes(b"\x00\xff\xfe garbage \x80" * 20), p)[1],
    "misspelt table": lambda p: (p.write_text("[colector]\nchunk_size = 2\n"), p)[1],
    "bad TOML": lambda p: (p.write_text("[collector\nchunk_size = \n"), p)[1],
}


@pytest.mark.parametrize("kind", sorted(FILES))
@pytest.mark.parametrize("command", sorted(set(KNOB_COMMANDS) - NO_CONFIG))
def test_an_unreadable_config_file_is_refused(tmp_path, kind, command):
    path = FILES[kind](tmp_path / "c.toml")
    assert_rejected([*KNOB_COMMANDS[command], "--config", str(path)])


@pytest.mark.parametrize("kind", sorted(FILES))
def test_an_unreadable_tune_base_is_refused(tmp_path, kind):
    path = FILES[kind](tmp_path / "c.toml")
    assert_rejected([*KNOB_COMMANDS["tune"], "--base", str(path)])


@pytest.mark.parametrize("kind", ["directory", "missing", "binary"])
def test_an_unreadable_database_or_results_folder_is_refused(tmp_path, kind):
    path = FILES[kind](tmp_path / "x")
    assert_rejected(["status", "--db", str(path)])
    assert_rejected(["plot", str(path)])
    assert_rejected(["live", "--db", "d.sqlite", "--key-file", str(path)])


@pytest.mark.parametrize("manifest", [b"\x00\xff garbage", b"[1, 2]", b'{"kind": "sweep"}',
                                      b'{"axes": 3, "base": []}', b"{",
                                      b'{"kind": "compare"}'])
def test_a_results_folder_with_a_bad_manifest_is_refused(tmp_path, manifest):
    (tmp_path / "sweep.json").write_bytes(manifest)
    assert_rejected(["plot", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.json"]
