"""What the README claims about the demo, read from its "Demo results" section, and how a
summary of a run (``reports.summary``) agrees with it.

Used twice: ``tests/test_readme_claims.py`` checks every number and verdict against the
committed ``docs/demo/summary.json``, and ``tests/test_demo_stability.py`` checks the verdicts
against summaries of fresh runs of the demo, on this machine's processor and on a second
arithmetic path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECTION_TITLE = "## Demo results"
CELL = re.compile(r"^(-?\d+\.\d) \[(-?\d+\.\d), (-?\d+\.\d)\]$")
DELTA = re.compile(r"^([+-]\d+\.\d) \[([+-]\d+\.\d), ([+-]\d+\.\d)\]$")
COMPARISON = re.compile(r"`?(?P<model>[^`]+)`? vs `?(?P<other>[^`]+)`?")


def readme_section(readme: str | None = None, title: str = SECTION_TITLE) -> str:
    """The README's section called ``title``, up to the next ``## `` heading."""
    readme = readme if readme is not None else (ROOT / "README.md").read_text()
    start = readme.index(title)
    end = readme.find("\n## ", start + len(title))
    return readme[start:end if end != -1 else None]


def table_rows(text: str, first_header: str) -> tuple[list[str], list[list[str]]]:
    """The header cells and the rows of the Markdown table whose first header is ``first_header``."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first_header} |"))
    header = [c.strip() for c in lines[start].strip().strip("|").split("|")]
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return header, rows


def quoted_comparisons(section: str | None = None) -> list[dict[str, str]]:
    """Every comparison row the README quotes: model, other, condition, the delta text, the
    verdict and the detectable-difference text."""
    _, rows = table_rows(section if section is not None else readme_section(), "comparison")
    out = []
    for comparison, condition, delta, verdict, detectable in rows:
        m = COMPARISON.fullmatch(comparison)
        if m is None:
            raise ValueError(f"README comparison {comparison!r} is not '`model` vs `other`'")
        out.append({"model": m["model"], "other": m["other"], "condition": condition, "delta": delta,
                    "verdict": verdict, "detectable": detectable})
    return out


def verdict_mismatches(summary: Mapping[str, Any], quoted: Sequence[Mapping[str, str]]) -> list[str]:
    """The README verdicts that ``summary`` (of any run of the demo) does not support, one line
    each; empty when every quoted verdict holds."""
    index = {(c["other"], c["condition"]): c for c in summary["comparisons"]}
    problems = []
    for q in quoted:
        c = index.get((q["other"], q["condition"]))
        if c is None:
            problems.append(f"{q['model']} vs {q['other']} / {q['condition']}: not in the run")
        elif c["verdict"] != q["verdict"]:
            problems.append(f"{q['model']} vs {q['other']} / {q['condition']}: README says {q['verdict']!r}, the run "
                            f"gives {c['verdict']!r} ({c['delta'] * 100:+.1f} [{c['ci_low'] * 100:+.1f}, "
                            f"{c['ci_high'] * 100:+.1f}])")
    return problems
