"""The README's demo numbers and conclusions are the ones the demo's stored results support.

``docs/demo/summary.json`` is written from the demo's run directory by ``python -m
reports.summary runs/demo --model mcer --out docs/demo/summary.json``. The README's "Demo
results" section quotes it in two tables; this test checks every number, every verdict and
every detectable difference in them against the summary, so the README can neither round a
number its own way nor claim a difference the intervals do not support. Whether fresh runs of
the demo, on this processor and on a second arithmetic path, still support the quoted verdicts
is ``tests/test_demo_stability.py``'s question.
"""

from __future__ import annotations

import copy
import json

from readme_claims import CELL, DELTA, ROOT, quoted_comparisons, readme_section, table_rows, verdict_mismatches

SUMMARY = json.loads((ROOT / "docs" / "demo" / "summary.json").read_text())
SECTION = readme_section()


def _points(x: float) -> str:
    return f"{x * 100:.1f}"


def _signed(x: float) -> str:
    return f"{x * 100:+.1f}"


def test_the_summary_is_of_the_demo():
    assert SUMMARY["model"] == "mcer" and SUMMARY["metric"] == "wf1" and len(SUMMARY["seeds"]) >= 3
    counts = sorted({len(s) for s in SUMMARY["seeds_by_model"].values()})
    assert all(f"{n} seeds" in SECTION for n in counts), f"the README must state the seed counts {counts}"


def test_every_cell_the_readme_quotes_is_the_stored_one():
    header, rows = table_rows(SECTION, "model")
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


def test_every_comparison_quotes_the_stored_interval_verdict_and_detectable_difference():
    quoted = quoted_comparisons(SECTION)
    assert quoted, "the README states no comparison"
    index = {(c["other"], c["condition"]): c for c in SUMMARY["comparisons"]}
    for q in quoted:
        c = index[(q["other"], q["condition"])]
        m = DELTA.match(q["delta"])
        assert m, f"{q['other']} / {q['condition']}: {q['delta']!r} is not '+d [+lo, +hi]'"
        assert m.groups() == (_signed(c["delta"]), _signed(c["ci_low"]), _signed(c["ci_high"])), (
            f"README mcer vs {q['other']} / {q['condition']}: {q['delta']}, the demo stored {_signed(c['delta'])} "
            f"[{_signed(c['ci_low'])}, {_signed(c['ci_high'])}]")
        expected = "mcer better" if c["ci_low"] > 0 else "mcer worse" if c["ci_high"] < 0 else "no difference shown"
        assert q["verdict"] == expected == c["verdict"], (
            f"README says {q['verdict']!r} for mcer vs {q['other']} / {q['condition']}; the interval says {expected!r}")
        assert q["detectable"].startswith(_points(c["detectable"])), (
            f"README's detectable difference for {q['other']} / {q['condition']} is {q['detectable']!r}; the demo "
            f"stored {_points(c['detectable'])}")
    assert verdict_mismatches(SUMMARY, quoted) == []


def test_a_run_whose_verdict_differs_from_the_readme_fails_the_check():
    """The check that CI applies to a fresh run of the demo (tests/test_demo_stability.py) must
    catch a changed verdict: here one quoted interval is moved across zero."""
    quoted = quoted_comparisons(SECTION)
    q = quoted[0]
    doctored = copy.deepcopy(SUMMARY)
    c = next(c for c in doctored["comparisons"] if (c["other"], c["condition"]) == (q["other"], q["condition"]))
    if c["verdict"] == "no difference shown":
        c["ci_low"], c["ci_high"], c["verdict"] = 0.01, 0.05, "mcer better"
    else:
        c["ci_low"], c["ci_high"], c["verdict"] = -0.01, 0.01, "no difference shown"
    problems = verdict_mismatches(doctored, quoted)
    assert len(problems) == 1 and q["other"] in problems[0] and "README says" in problems[0]


def test_the_power_of_the_readme_table():
    """The comparisons the README quotes can detect a 5-point difference with 80% power (median)."""
    index = {(c["other"], c["condition"]): c for c in SUMMARY["comparisons"]}
    detectable = sorted(index[(q["other"], q["condition"])]["detectable"] for q in quoted_comparisons(SECTION))
    median = detectable[len(detectable) // 2] if len(detectable) % 2 else sum(
        detectable[len(detectable) // 2 - 1:len(detectable) // 2 + 1]) / 2
    assert median <= 0.05, f"median detectable difference of the README's comparisons: {median * 100:.1f} points"
