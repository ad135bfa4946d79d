"""DEVELOPERS.md rule 1: outside collector/live, no collector module imports a clock or
the network; the tasks get all of that from their runtime."""

from __future__ import annotations

import ast
from pathlib import Path

import collector

FORBIDDEN = {"simpy", "asyncio", "httpx", "requests", "aiohttp", "socket", "threading", "time"}


def test_collector_logic_imports_no_clock_and_no_network():
    root = Path(collector.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if "live" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
