"""The experiments' report: one Markdown page with each finding's answer,
the figures measured, its table and its figures."""

from __future__ import annotations

from pathlib import Path

from .runner import Finding

INTRO = """\
# The seed's findings, reproduced

Each section asks one question the seed document (2026-02-08, "Fix Data
Collection Stall") answered, runs the collector in simulation against the mock
Keepa to answer it again, and says where the two agree. All runs are 24
simulated hours (experiment 6: 48) with the mock's measured costs (a peek with
offers=20 costs 5-12 tokens per ASIN); means are over seeds, with 95 % intervals.
Regenerate with `python -m experiments`.
"""


def write_report(findings: list[Finding], out: Path) -> Path:
    parts = [INTRO]
    for f in findings:
        parts.append(f"## {f.number}. {f.title}\n\n**{f.question}** {f.answer}\n")
        parts.append("Measured: " + "; ".join(f"{k} = {_num(v)}" for k, v in f.measured.items())
                     + "\n")
        parts.append(f.table + "\n")
        parts += [f"![{path.stem}]({path.relative_to(out)})\n" for path in f.figures]
    path = out / "report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path


def _num(value) -> str:
    value = float(value)
    return f"{value:g}" if value.is_integer() else f"{value:.3f}"
