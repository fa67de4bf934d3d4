"""The README's demo numbers and conclusions are the ones the demo's stored results support.

``docs/demo/summary.json`` is written from the demo's run directory by ``python -m
reports.summary runs/demo --model mcer --out docs/demo/summary.json``. The README's "Demo
results" section quotes it in two tables; this test checks every number and every "yes"/"no"
in them against the summary, so the README can neither round a number its own way nor claim
a difference the intervals do not support.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = json.loads((ROOT / "docs" / "demo" / "summary.json").read_text())
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + len(title))
    return README[start:end if end != -1 else None]


def _table_rows(text: str, first_header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first_header} |"))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return rows


def _points(x: float) -> str:
    return f"{x * 100:.1f}"


def _signed(x: float) -> str:
    return f"{x * 100:+.1f}"


SECTION = _section("## Demo results")
CELL = re.compile(r"^(-?\d+\.\d) \[(-?\d+\.\d), (-?\d+\.\d)\]$")
DELTA = re.compile(r"^([+-]\d+\.\d) \[([+-]\d+\.\d), ([+-]\d+\.\d)\]$")


def test_the_summary_is_of_the_demo():
    assert SUMMARY["model"] == "mcer" and SUMMARY["metric"] == "wf1" and len(SUMMARY["seeds"]) >= 3
    assert f"{len(SUMMARY['seeds'])} seeds" in SECTION


def test_every_cell_the_readme_quotes_is_the_stored_one():
    rows = _table_rows(SECTION, "model")
    header = [c.strip() for c in SECTION.splitlines()[next(
        i for i, ln in enumerate(SECTION.splitlines()) if ln.startswith("| model |"))].strip("|").split("|")]
    conditions = [h.replace("wF1 ", "").strip() for h in header[1:]]
    assert rows, "the README's demo table is empty"
    checked = 0
    for row in rows:
        model = row[0].strip("`* ")
        for cond, text in zip(conditions, row[1:]):
            m = CELL.match(text.strip("* "))
            assert m, f"{model} / {cond}: {text!r} is not 'mean [low, high]'"
            cell = SUMMARY["cells"][f"{model}|{cond}"]
            assert m.groups() == (_points(cell["mean"]), _points(cell["ci_low"]), _points(cell["ci_high"])), (
                f"README {model} / {cond}: {text} but the demo stored {_points(cell['mean'])} "
                f"[{_points(cell['ci_low'])}, {_points(cell['ci_high'])}]")
            checked += 1
    assert checked >= 6


def test_every_conclusion_is_supported_by_the_intervals():
    rows = _table_rows(SECTION, "comparison")
    assert rows, "the README states no comparison"
    index = {(c["other"], c["condition"]): c for c in SUMMARY["comparisons"]}
    for comparison, condition, delta, verdict in rows:
        other = re.fullmatch(r"`?mcer`? vs `?([^`]+)`?", comparison).group(1)
        c = index[(other, condition)]
        m = DELTA.match(delta)
        assert m, f"{comparison} / {condition}: {delta!r} is not '+d [+lo, +hi]'"
        assert m.groups() == (_signed(c["delta"]), _signed(c["ci_low"]), _signed(c["ci_high"])), (
            f"README {comparison} / {condition}: {delta}, the demo stored {_signed(c['delta'])} "
            f"[{_signed(c['ci_low'])}, {_signed(c['ci_high'])}]")
        if c["ci_low"] > 0:
            expected = "mcer better"
        elif c["ci_high"] < 0:
            expected = "mcer worse"
        else:
            expected = "no difference shown"
        assert verdict == expected, f"README says {verdict!r} for {comparison} / {condition}; the interval says {expected!r}"

