"""reports.summary: the numbers a README may quote about a run, and its two Markdown tables."""

from __future__ import annotations

import json

import pytest
from report_fixtures import make_run

from reports.summary import main, markdown_tables, run_summary


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("summary") / "run", seeds=(0, 1, 2), n_utts=160)
    return run_summary(run, "mcer", n_boot=300)


def test_cells_cover_clean_and_each_corruptions_highest_severity(summary):
    conds = {c["condition"] for c in summary["cells"].values()}
    assert conds == {"clean", "audio-white@5", "missing audio@5"}
    cell = summary["cells"]["mcer|clean"]
    assert cell["ci_low"] <= cell["mean"] <= cell["ci_high"] and cell["n_seeds"] == 3
    assert summary["seeds"] == [0, 1, 2] and summary["metric"] == "wf1"


def test_comparisons_carry_intervals_and_the_verdict_follows_them(summary):
    by = {(c["other"], c["condition"]): c for c in summary["comparisons"]}
    assert len(by) == 3 * 3  # three other models, three conditions
    # the fixture makes mcer clearly the best model on the clean test set
    clean = by[("late-fusion", "clean")]
    assert clean["delta"] > 0 and clean["ci_low"] > 0 and clean["holds"] and clean["n_utterances"] == 160
    assert clean["verdict"] == "mcer better"  # the verdict logic itself: tests/test_reports_inference.py
    assert clean["method"].startswith("seeds + shared test set") and clean["detectable"] > 0


def test_markdown_tables_quote_the_summary_in_points(summary):
    text = markdown_tables(summary, ["mcer", "text-only"], ["clean", "audio-white@5"])
    lines = text.splitlines()
    assert lines[0] == "| model | clean | audio-white@5 |"
    c = summary["cells"]["mcer|clean"]
    assert f"{c['mean'] * 100:.1f} [{c['ci_low'] * 100:.1f}, {c['ci_high'] * 100:.1f}]" in lines[2]
    comparisons = [ln for ln in lines if ln.startswith("| `mcer` vs ")]
    assert len(comparisons) == 2 and all("text-only" in ln for ln in comparisons)


def test_command_writes_the_json_and_refuses_an_unknown_model(tmp_path, capsys):
    run = make_run(tmp_path / "run", seeds=(0, 1))
    out = tmp_path / "docs" / "summary.json"
    assert main([str(run), "--model", "mcer", "--out", str(out), "--markdown"]) == 0
    assert json.loads(out.read_text())["model"] == "mcer" and "| comparison |" in capsys.readouterr().out
    with pytest.raises(ValueError, match="model 'mcr' has no successful rows"):
        run_summary(run, "mcr")
