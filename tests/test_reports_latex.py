"""LaTeX/Markdown tables: structure, bold on the best, row counts, ablation significance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports.latex import (
    Table,
    ablation_rows,
    ablation_table,
    dataset_cards_table,
    main_results_table,
    robustness_table,
    severity_table,
)
from reports.robustness import robustness_summary

SEEDS = (1, 2, 3)
M = 120  # utterances per test set
QUALITY = {"full": 0.9, "no-audio": 0.45, "no-video": 0.7}  # share of correct predictions


def _results() -> tuple[pd.DataFrame, dict[str, dict]]:
    """Synthetic store rows + predictions: wf1 = acc = share of correct utterances."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, M)
    uids = [f"d{i // 10}-u{i % 10}" for i in range(M)]
    rows, preds = [], {}
    for variant, q in QUALITY.items():
        for seed in SEEDS:
            for corr, sev in [("clean", 0)] + [("audio-white", s) for s in range(1, 6)]:
                qq = q - 0.05 * sev
                right = rng.random(M) < qq
                pred = np.where(right, y, (y + 1) % 4)
                out = np.eye(4, dtype=np.float32)[pred]
                key = f"{variant}|{seed}|{corr}|{sev}"
                preds[key] = {"uids": uids, "targets": y, "outputs": out}
                acc = float((pred == y).mean())
                rows.append({"cell_key": key, "model": "mcer", "variant": variant, "dataset": "synthetic",
                             "seed": seed, "corruption": corr, "severity": sev, "defense": "none",
                             "split": "test", "status": "ok", "metric_wf1": acc, "metric_acc": acc,
                             "corruption_options": {"name": corr}, "parameter": None if sev == 0 else "snr_db",
                             "parameter_value": None if sev == 0 else f"{20 - 5 * sev:g} dB"})
    return pd.DataFrame(rows), preds


def _body(latex: str) -> list[str]:
    lines = latex.splitlines()
    assert lines.count(r"\toprule") == 1 and lines.count(r"\bottomrule") == 1
    start, end = lines.index(r"\toprule"), lines.index(r"\bottomrule")
    body = [ln for ln in lines[start + 2:end] if ln != r"\midrule"]
    assert lines[start + 2] == r"\midrule"
    return body


def _md_rows(md: str) -> list[list[str]]:
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in r.strip("|").split(" | ")] for r in rows[1:]]


def test_table_structure_and_validation():
    t = Table(["a", "b_c"], [["x%", "1.0 ± 0.1"], ["y", "2"]], [[False, False], [False, True]])
    tex = t.latex()
    assert r"\begin{tabular}{lr}" in tex and r"b\_c" in tex and r"x\%" in tex and r"$\pm$" in tex
    assert r"\textbf{2}" in tex and len(_body(tex)) == 2
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        Table(["a", "b"], [["x"]])


def test_main_results_table_bold_best_and_rows():
    df, _ = _results()
    tex, md = main_results_table(df, ["wf1", "acc"])
    body = _body(tex)
    assert len(body) == 3
    assert all(r.count("&") == 2 and r.endswith(r"\\") for r in body)
    full = [r for r in body if r.startswith("full")][0]
    assert full.count(r"\textbf") == 2
    assert r"\textbf" not in [r for r in body if r.startswith("no-audio")][0]
    rows = _md_rows(md)
    assert [r[0] for r in rows] == ["full", "no-audio", "no-video"]
    assert rows[0][1].startswith("**") and not rows[1][1].startswith("**")
    with pytest.raises(ValueError, match="metric 'f9'"):
        main_results_table(df, ["f9"])


def test_robustness_table_blocks_and_bold():
    from reports.aggregate import curves

    df, _ = _results()
    rob = robustness_summary(curves(df, "wf1"), "wf1", reference="full")
    tex, md = robustness_table(rob, reference="full")
    body = _body(tex)
    assert len(body) == 3 and all(r.count("&") == 5 for r in body)  # model, corr, clean, aurc, ce, drop
    assert "Drop@5" in tex and "CE" in tex
    rows = _md_rows(md)
    assert len(rows) == 3 and rows[0][:2] == ["full", "audio-white"]
    assert rows[0][2].startswith("**") and rows[0][3].startswith("**")  # best clean & AURC


def test_ablation_paired_significance_marker():
    df, preds = _results()
    rows = ablation_rows(df, "wf1", full="full", predictions=preds.get, n_boot=300)
    assert set(rows["setting"]) == {"clean", "worst"}
    assert rows[rows["setting"] == "worst"]["condition"].iloc[0] == "audio-white@5"
    na = rows[(rows.variant == "no-audio") & (rows.setting == "clean")].iloc[0]
    assert na["delta"] < -0.3 and na["ci_high"] < 0 and na["significant"]
    assert na["p_holm"] >= na["p"]
    tex, md = ablation_table(rows, "wf1", "full")
    body = _body(tex)
    assert len(body) == 3 and all(r.count("&") == 4 for r in body)
    assert r"$^\dagger$" in [r for r in body if r.startswith("no-audio")][0]
    md_rows = _md_rows(md)
    assert [r[0] for r in md_rows] == ["full", "no-audio", "no-video"]
    assert "†" in md_rows[1][2]
    # without predictions: seed-level CI, no p-values
    rows2 = ablation_rows(df, "wf1", full="full", n_boot=100)
    assert rows2["p"].isna().all() and (rows2["ci_low"] <= rows2["ci_high"]).all()
    with pytest.raises(ValueError, match="full model 'nope'"):
        ablation_rows(df, "wf1", full="nope")


def test_severity_and_dataset_cards():
    from harness import DATASETS

    df, _ = _results()
    tex, md = severity_table(df)  # from the stored rows alone: no registry lookup
    body = _body(tex)
    assert len(body) == 1 and body[0].count("&") == 7
    assert r"snr\_db" in body[0]
    rows = _md_rows(md)
    assert rows[0][:3] == ["audio-white", "snr_db", "clean"] and rows[0][3] == "15 dB" and rows[0][-1] == "-5 dB"
    ds = DATASETS.create("synthetic", n_train=2, n_valid=1, n_test=1, keep_raw=False, min_utts=2, max_utts=3)
    s = ds.summary()
    tex, md = dataset_cards_table([s, {**s, "name": "copy"}])
    assert len(_body(tex)) == 2
    rows = _md_rows(md)
    assert rows[0][0] == "synthetic" and rows[0][2] == "4" and "text (64)" in rows[0][-1]
    assert rows[0][4] == f"{s['splits']['train']['dialogues']} / {s['splits']['train']['utterances']}"
    with pytest.raises(ValueError, match="lacks key 'spec'"):
        dataset_cards_table([{"name": "x"}])
