"""Issue #17's acceptance checks on whole reports built from stores: stable model looks, labels
that never overlap, TrueType fonts only, multi-metric tables, n and intervals, results.json
against its schema, and compare refusing incomparable runs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_fixtures import make_run

from harness.store import ResultStore
from reports.style import PINNED, model_style, model_styles

ROOT = Path(__file__).resolve().parent.parent


def load_rows(run: Path) -> pd.DataFrame:
    return ResultStore(run / "results.sqlite", read_only=True).dataframe()


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """A classification and a regression (MOSI-named) run, reports built once for the module."""
    from reports.build import build_report

    base = tmp_path_factory.mktemp("paper")
    cls = make_run(base / "cls", fail=[("late-fusion", 0, "audio-white", 5), ("late-fusion", 1, "audio-white", 5)])
    reg = make_run(base / "reg", task="regression", dataset="mosi", seeds=(0,))
    return {"cls": (cls, build_report(cls, n_boot=200)), "reg": (reg, build_report(reg, n_boot=200))}


# ------------------------------------------------------------------------------ model looks

def _look(s):
    return (s["color"].lower(), s["marker"], str(s["linestyle"]))


def test_model_looks_are_fixed_per_label_whatever_the_run():
    run_a = ["mcer", "text-only", "audio-only", "tfn", "my-new-model", "mcer[graphs=none]"]
    run_b = ["zeta-model", "tfn", "my-new-model", "early-fusion", "mcer", "mcer[denoiser=none]", "audio-only"]
    a, b = model_styles(run_a), model_styles(list(reversed(run_b)))
    for label in set(run_a) & set(run_b):
        assert a[label] == b[label], label
    assert model_styles(run_a) == model_styles(list(reversed(run_a)))  # order never matters
    # the clash: audio-only and tfn were both dark blue
    assert a["audio-only"]["color"] != a["tfn"]["color"]
    assert len({_look(s) for s in PINNED.values()}) == len(PINNED)
    assert len({s["color"] for s in PINNED.values()}) == len(PINNED)


def test_hashed_look_is_the_same_in_every_process():
    """Unknown labels are hashed with SHA-256, not Python's per-process salted hash()."""
    code = "from reports.style import model_style; print(model_style('brand-new-fusion'))"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert len(outs) == 1 and str(model_style("brand-new-fusion")) in outs


def test_no_two_lines_alike_in_a_figure_of_many_models():
    labels = list(PINNED) + [f"mcer[{k}={v}]" for k, v in [("denoiser", "diff-dual"), ("denoiser", "standard"),
                                                              ("denoiser", "none"), ("graphs", "intra"),
                                                              ("graphs", "inter"), ("graphs", "unaware"),
                                                              ("graphs", "none"), ("fusion", "symmetric"),
                                                              ("fusion", "concat"), ("filter_gates", "off"),
                                                              ("aux_loss", "off"), ("logit_weights", "equal")]]
    labels += [f"custom-{i}" for i in range(40)]
    styles = model_styles(labels)
    assert len({_look(s) for s in styles.values()}) == len(labels)


# ------------------------------------------------------------------------------ scatter labels

def test_twenty_model_scatter_labels_never_overlap(tmp_path):
    from reports.scatter import clean_vs_robust, label_overlaps

    rng = np.random.default_rng(3)
    names = list(PINNED)[:14] + [f"mcer[graphs=v{i}]" for i in range(6)]
    clean = 0.70 + rng.normal(0, 0.015, 20)  # crowded: 20 models within a few points
    rob = pd.DataFrame({"dataset": "synthetic", "variant": names, "corruption": "noise", "m0": clean,
                        "aurc": clean - 0.05 + rng.normal(0, 0.01, 20)})
    kept: list = []
    paths = clean_vs_robust(rob, tmp_path / "scatter", metric="wf1", keep=kept)
    assert all(Path(p).stat().st_size > 0 for p in paths)
    fig = kept[0]
    texts = fig._mcer_labels
    assert sorted(t.get_text() for t in texts) == sorted(names)
    assert label_overlaps(fig, texts) == []
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Clean wF1 (%) ↑" and "AURC" in ax.get_ylabel() and "(%)" in ax.get_ylabel()


# ------------------------------------------------------------------------------ fonts

def _font_subtypes(pdf: Path) -> set[str]:
    from pypdf import PdfReader

    out = set()
    for page in PdfReader(str(pdf)).pages:
        fonts = page.get("/Resources", {}).get_object().get("/Font", {})
        for ref in fonts.get_object().values():
            out.add(str(ref.get_object().get("/Subtype")))
    return out


def test_every_report_pdf_embeds_truetype_fonts_only(reports, tmp_path):
    pdfs = [Path(p) for _, w in reports.values() for p in w["figures"] if p.endswith(".pdf")]
    assert len(pdfs) >= 10
    for pdf in pdfs:
        subtypes = _font_subtypes(pdf)
        assert subtypes and "/Type3" not in subtypes, f"{pdf.name}: {subtypes}"
    # the corruption gallery is drawn by the run layer with its own savefig
    from harness import DATASETS
    from harness.run.gallery import make_gallery

    ds = DATASETS.create("synthetic", n_train=1, n_valid=1, n_test=1, seed=0)
    _, paths = make_gallery(ds.splits["test"], ["audio-white", "video-occlusion"], tmp_path / "gallery")
    subtypes = _font_subtypes(Path(paths[1]))
    assert subtypes and "/Type3" not in subtypes, subtypes


# ------------------------------------------------------------------------------ tables

def _md_header(path: Path) -> list[str]:
    line = next(ln for ln in path.read_text().splitlines() if ln.startswith("| Model") or ln.startswith("| Variant"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def test_regression_main_table_prints_the_mosi_metric_set(reports):
    run, _ = reports["reg"]
    header = _md_header(run / "tables" / "main_mosi.md")
    assert header == ["Model", "Acc-2 (Has0) (%) ↑", "Acc-2 (Non0) (%) ↑", "F1 (Has0) (%) ↑", "F1 (Non0) (%) ↑",
                      "MAE ↓", "Corr ↑", "Acc-7 (%) ↑"]
    md = (run / "tables" / "main_mosi.md").read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| mcer |"))
    mae = row.split(" | ")[5].replace("**", "")
    assert len(mae.split(" ± ")[0].split(".")[1]) == 3  # MAE with three decimals
    # one seed: n = 1 and a real interval from the test utterances, never "± 0.0"
    assert "n = 1 seed × 80 test utterances" in md and "± 0.0 " not in md and "± 0.000" not in md
    rob = (run / "tables" / "robustness_mosi.md").read_text()
    assert "MAE, lower is better (↓)" in rob and "1 − mae/3" not in rob
    overview = _md_header(run / "tables" / "robustness_mosi.md")
    assert overview[1] == "Clean" and "Missing audio" in overview and "White noise (audio)" in overview
    per_corr = _md_header(run / "tables" / "robustness_mosi_01.md")
    assert "MAE ↓" in per_corr and "Acc-7 (%) ↑" in per_corr and per_corr[-1] == "CE (%) ↓"


def test_classification_main_table_prints_acc_and_wf1_with_intervals(reports):
    run, _ = reports["cls"]
    header = _md_header(run / "tables" / "main_synthetic.md")
    assert header == ["Model", "Acc (%) ↑", "wF1 (%) ↑"]
    md = (run / "tables" / "main_synthetic.md").read_text()
    assert "n = 2 seeds × 80 test utterances" in md
    body = [ln for ln in md.splitlines() if ln.startswith("| ") and " ± " in ln]
    assert len(body) == 4
    rows = [ln.split(" | ")[0].strip("| ") for ln in body]
    assert rows == ["mcer", "late-fusion", "text-only", "mcer[graphs=none]"]  # full, baselines, then variants


def test_iemocap_gets_a_per_class_table(tmp_path):
    from reports.build import build_report

    run = make_run(tmp_path / "iemocap", dataset="iemocap-erc", corruptions=(), seeds=(0,))
    written = build_report(run, n_boot=100)
    per_class = run / "tables" / "per_class_iemocap-erc.md"
    assert str(per_class.with_suffix(".tex")) in written["tables"]
    assert _md_header(per_class)[1:] == ["F1 neutral (%) ↑", "F1 happy (%) ↑", "F1 sad (%) ↑", "F1 angry (%) ↑"]
    assert "n = 1 seed" in per_class.read_text() and "no interval" in per_class.read_text()


# ------------------------------------------------------------------------------ figures

def test_figures_of_a_report(reports):
    run, written = reports["cls"]
    names = {Path(p).name for p in written["figures"]}
    for stem in ("robustness_synthetic", "robustness_ablation_synthetic", "drop_heatmap_synthetic",
                 "clean_vs_robust_synthetic", "ablation_synthetic", "learning_curves_synthetic"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names, stem


def test_robustness_curve_axes_failed_marker_and_titles(tmp_path):
    import matplotlib.pyplot as plt

    from reports.aggregate import curves
    from reports.curves import FAILED_LABEL, robustness_figure

    run = make_run(tmp_path / "r", fail=[("text-only", 0, "audio-white", 5), ("text-only", 1, "audio-white", 5)])
    df = load_rows(run)
    summary = curves(df, "wf1")
    figs = []
    orig = plt.Figure.savefig

    def grab(self, *a, **k):
        figs.append(self)
        return orig(self, *a, **k)

    plt.Figure.savefig = grab
    try:
        robustness_figure(summary, "wf1", tmp_path / "curves", titles={"audio-white": "White noise (audio)",
                                                                     "missing audio": "Missing audio"},
                          full_model="mcer")
    finally:
        plt.Figure.savefig = orig
    fig = figs[-1]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["Missing audio", "White noise (audio)"]
    assert axes[0].get_ylabel() == "wF1 (%) ↑"
    ticks = [t.get_text() for t in axes[1].get_xticklabels()]
    assert ticks == ["0\n", "1\n20", "3\n10", "5\n0"]
    assert axes[1].get_xlabel() == "severity / snr\n(dB)"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert FAILED_LABEL in legend and "mcer (full model)" in legend
    # the failed point sits on the axis floor (axes coordinates), not at a metric value
    noise = axes[1]
    crosses = [c for c in noise.collections if c.get_offsets().shape[0] and c.get_transform() != noise.transData]
    assert crosses and np.allclose(crosses[0].get_offsets()[:, 1], 0.02)


def test_learning_curves_from_the_stored_history(reports):
    from reports.learning import histories

    run, _ = reports["cls"]
    hist = histories(ResultStore(run / "results.sqlite").dataframe("trainings"), "synthetic")
    assert set(hist["variant"]) == {"mcer", "mcer[graphs=none]", "text-only", "late-fusion"}
    assert hist.groupby(["variant", "seed"]).size().eq(6).all()
    assert {"train_loss", "valid_wf1", "best_epoch"} <= set(hist.columns)


# ------------------------------------------------------------------------------ results.json

def test_results_json_follows_its_schema(reports):
    import jsonschema

    schema = json.loads((ROOT / "docs" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for run, _ in reports.values():
        doc = json.loads((run / "results.json").read_text())
        jsonschema.validate(doc, schema)
        rows = pd.read_csv(run / "results.csv")
        assert len(doc["cells"]) == len(rows)
    doc = json.loads((reports["cls"][0] / "results.json").read_text())
    failed = [c for c in doc["cells"] if c["status"] == "failed"]
    assert len(failed) == 2 and all(c["metrics"] == {} for c in failed)
    clean = [c for c in doc["cells"] if c["variant"] == "mcer" and c["corruption"] == "clean"]
    assert {"acc", "wf1", "mf1", "f1_happy"} <= set(clean[0]["metrics"])
    assert doc["datasets"]["synthetic"] == {"task": "classification", "metrics": ["acc", "wf1"], "headline": "wf1"}
    assert doc["metrics"]["wf1"]["higher_is_better"] is True
    summary = [s for s in doc["clean_summary"] if s["variant"] == "mcer" and s["metric"] == "wf1"]
    assert summary[0]["ci_low"] <= summary[0]["mean"] <= summary[0]["ci_high"] and summary[0]["n_seeds"] == 2
    bad = dict(doc, cells=[{**doc["cells"][0], "severity": "high"}])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


# ------------------------------------------------------------------------------ compare

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


def test_compare_refuses_incomparable_runs_with_one_line(tmp_path):
    a = make_run(tmp_path / "a", variants=("mcer", "text-only"), corruptions=("audio-white",))
    b = make_run(tmp_path / "b", variants=("tfn",), corruptions=("audio-white",), code_version="v2+src.def",
                 corruption_seed=7)
    c = make_run(tmp_path / "c", variants=("tfn",), corruptions=("audio-white",), dataset="mosei-aligned",
                 task="regression")
    proc = _cli("compare", str(a), str(b), "--out", str(tmp_path / "ab"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "corruption_seed differs" in lines[0] and "code_version differs" in lines[0]
    assert "datasets" not in lines[0].split("not comparable:")[1].split("(")[0]
    assert not (tmp_path / "ab" / "results.sqlite").exists()
    proc = _cli("compare", str(a), str(c), "--out", str(tmp_path / "ac"))
    assert proc.returncode == 2 and "datasets differs" in proc.stderr and proc.stderr.count("\n") == 1


def test_compare_merges_comparable_runs_into_one_report(tmp_path):
    from harness.run.compare import merge_stores
    from reports.build import build_report

    a = make_run(tmp_path / "a", variants=("mcer", "text-only"), corruptions=("audio-white",))
    b = make_run(tmp_path / "b", variants=("mcer", "tfn"), corruptions=("audio-white",))
    db = merge_stores([a, b], tmp_path / "ab")
    df = load_rows(db.parent)
    assert set(df["variant"]) == {"mcer", "text-only", "tfn"}
    assert len(df) == len(load_rows(a)) + len(load_rows(b)) // 2  # mcer's identical cells stored once
    written = build_report(db.parent, n_boot=100, title="comparison")
    assert any(p.endswith("index.html") for p in written["tables"])
    # with --allow-incomparable a differing run merges; a label trained differently is kept apart
    c = make_run(tmp_path / "c", variants=("text-only",), corruptions=("audio-white",), code_version="v9")
    with closing(sqlite3.connect(c / "results.sqlite")) as con, con:  # c trained text-only differently
        con.execute("UPDATE results SET train_key = 'other-' || train_key, cell_key = 'other-' || cell_key")
        con.execute("UPDATE predictions SET cell_key = 'other-' || cell_key")
    db = merge_stores([a, c], tmp_path / "ac", allow_incomparable=True)
    merged = load_rows(db.parent)
    assert set(merged["variant"]) == {"mcer", "text-only (a)", "text-only (c)"}
    assert merged.groupby("variant").size().nunique() == 1


def test_a_report_metric_of_the_wrong_task_is_refused(reports):
    from reports.build import build_report

    run, _ = reports["cls"]
    with pytest.raises(ValueError, match="'mae' is a regression metric, but the results hold only"):
        build_report(run, metric="mae")
    with pytest.raises(ValueError, match="unknown metric 'wf2'"):
        build_report(run, metric="wf2")
