"""LaTeX/Markdown tables: structure, bold on the best, row counts, ablation significance, and
the layout rules that make them fit a two-column paper (checked without TeX)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports.ablation_table import ablation_rows, ablation_table, printed_delta
from reports.info_tables import dataset_cards_table, severity_table
from reports.latex import MAX_ROWS_PER_FLOAT, Table
from reports.main_table import main_results_table

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
    head_end = lines.index(r"\midrule", start)  # the header may take several lines
    return [ln for ln in lines[head_end + 1:end] if ln != r"\midrule"]


def _md_rows(md: str) -> list[list[str]]:
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in r.strip("|").split(" | ")] for r in rows[1:]]


def test_table_structure_and_validation():
    t = Table(["a", "b_c"], [["x%", "1.0 ± 0.1"], ["y", "2"]], [[False, False], [False, True]])
    tex = t.latex()
    assert r"\begin{table}[t]" in tex and r"\begin{tabular}{lr}" in tex and r"b\_c" in tex and r"x\%" in tex and r"$\pm$" in tex
    assert r"\textbf{2}" in tex and len(_body(tex)) == 2
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        Table(["a", "b"], [["x"]])


def test_main_results_table_bold_best_and_rows():
    df, preds = _results()
    tex, md = main_results_table(df, ["wf1", "acc"], predictions=preds.get, n_boot=200).both()
    body = _body(tex)
    assert len(body) == 3
    assert all(r.count("&") == 2 and r.endswith(r"\\") for r in body)
    full = [r for r in body if r.startswith("full")][0]
    assert full.count(r"\textbf") == 2
    assert r"\textbf" not in [r for r in body if r.startswith("no-audio")][0]
    rows = _md_rows(md)
    assert [r[0] for r in rows] == ["full", "no-audio", "no-video"]
    assert rows[0][1].startswith("**") and not rows[1][1].startswith("**")
    assert "n = 3 seeds × 120 test utterances" in md and "over training seeds and the shared test set" in md
    with pytest.raises(ValueError, match="metric 'f9'"):
        main_results_table(df, ["f9"])


def test_ablation_paired_significance_marker():
    df, preds = _results()
    rows = ablation_rows(df, "wf1", full="full", predictions=preds.get, n_boot=300)
    assert set(rows["setting"]) == {"clean", "worst"}
    assert rows[rows["setting"] == "worst"]["condition"].iloc[0] == "audio-white@5"
    na = rows[(rows.variant == "no-audio") & (rows.setting == "clean")].iloc[0]
    assert na["delta"] < -0.3 and na["ci_high"] < 0 and na["significant"]
    assert na["p_holm"] >= na["p"]
    tex, md = ablation_table(rows, "wf1", "full").both()
    body = _body(tex)
    assert len(body) == 3 and all(r.count("&") == 4 for r in body)
    assert r"$^\dagger$" in [r for r in body if r.startswith("no-audio")][0]
    md_rows = _md_rows(md)
    assert [r[0] for r in md_rows] == ["full", "no-audio", "no-video"]
    assert "†" in md_rows[1][2]
    # without predictions: the t interval over seeds alone, and its p-values, named as such
    rows2 = ablation_rows(df, "wf1", full="full", n_boot=100)
    assert rows2["test"].str.startswith("t over seeds").all() and (rows2["ci_low"] <= rows2["ci_high"]).all()
    assert rows2["p"].between(0, 1).all()
    with pytest.raises(ValueError, match="full model 'nope'"):
        ablation_rows(df, "wf1", full="nope")


def _number(text: str) -> float:
    return float(text.replace("**", "").replace("†", "").split(" ± ")[0])


def test_ablation_delta_is_the_difference_of_the_printed_means():
    """Δ in the table = printed variant mean − printed full-model mean, exactly, in every row and
    setting; and its paired test is of that same difference (the effect equals delta)."""
    df, preds = _results()
    rows = ablation_rows(df, "wf1", full="full", predictions=preds.get, n_boot=200)
    _, md = ablation_table(rows, "wf1", "full").both()
    table = _md_rows(md)
    full = table[0]
    for line in table[1:]:
        for col in (1, 3):  # (mean ± std, Δ) per setting
            want = round(_number(line[col]) - _number(full[col]), 1)
            assert _number(line[col + 1]) == pytest.approx(want, abs=1e-9), line
    for r in rows.itertuples():
        assert r.delta == pytest.approx(r.mean - r.full_mean)
        assert r.ci_low <= r.delta <= r.ci_high
        assert printed_delta(r.mean, r.full_mean, "wf1") == pytest.approx(
            round(round(r.mean * 100, 1) - round(r.full_mean * 100, 1), 1))
    assert "difference of the two printed means" in md and "t test of that difference" in md


def test_severity_and_dataset_cards():
    from harness import DATASETS

    df, _ = _results()
    tex, md = severity_table(df).both()  # from the stored rows alone: no registry lookup
    body = _body(tex)
    assert len(body) == 1 and body[0].count("&") == 7
    assert r"snr\_db" in body[0]
    rows = _md_rows(md)
    assert rows[0][:3] == ["audio-white", "snr_db", "clean"] and rows[0][3] == "15 dB" and rows[0][-1] == "-5 dB"
    ds = DATASETS.create("synthetic", n_train=2, n_valid=1, n_test=1, keep_raw=False, min_utts=2, max_utts=3)
    s = ds.summary()
    tex, md = dataset_cards_table([s, {**s, "name": "copy"}]).both()
    assert len(_body(tex)) == 2
    rows = _md_rows(md)
    assert rows[0][0] == "synthetic" and rows[0][2] == "4" and "text (64)" in rows[0][-1]
    assert rows[0][4] == f"{s['splits']['train']['dialogues']} / {s['splits']['train']['utterances']}"
    with pytest.raises(ValueError, match="lacks key 'spec'"):
        dataset_cards_table([{"name": "x"}])


def _floats(tex: str) -> list[tuple[str, int, int]]:
    """(environment, columns, body rows) of every float in ``tex``."""
    out = []
    for chunk in tex.split(r"\end{table")[:-1]:
        env = "table*" if r"\begin{table*}" in chunk else "table"
        spec = chunk.split(r"\begin{tabular}{")[1].split("}")[0]
        out.append((env, len(spec), len(_body(chunk + r"\end{table}"))))
    return out


def test_float_type_columns_and_rows_per_float():
    """Narrow tables are column floats, wide ones span both columns, long ones are split; every
    float keeps the full column count."""
    narrow = Table(["Model", "wF1"], [["a", "61.2 ± 1.0"], ["b", "60.0 ± 2.0"]])
    assert _floats(narrow.latex()) == [("table", 2, 2)]
    assert narrow.layout()[2] <= 252
    wide = Table(["Model"] + [f"Acc-2 (Has0)\n(%) ↑ {i}" for i in range(7)], [["mcer-long-name"] + ["77.4 ± 1.2"] * 7])
    env, size, width = wide.layout()
    assert env == "table*" and 252 < width <= 516
    assert _floats(wide.latex()) == [("table*", 8, 1)]
    n = 2 * MAX_ROWS_PER_FLOAT + 5
    long = Table(["Model", "AURC"], [[f"m{i}", "1.0"] for i in range(n)], blocks=[9, 19], caption="Long.",
                 label="tab:long")
    floats = _floats(long.latex())
    assert len(floats) == 3 and sum(f[2] for f in floats) == n
    assert all(f[1] == 2 and f[2] <= MAX_ROWS_PER_FLOAT for f in floats)
    assert "(part 2 of 3)" in long.latex()
    assert long.latex().count(r"\label{") == 3  # unique labels per part


def test_no_negative_zero_and_two_line_headers():
    from reports.latex import fmt

    assert fmt(-0.04, 1) == "0.0" and fmt(-0.06, 1) == "-0.1" and fmt(float("nan"), 1) == "–"
    t = Table(["Model", "MAE\n↓"], [["a", "0.500"]])
    assert "MAE ↓" in t.markdown()
    lines = t.latex().splitlines()
    head = lines[lines.index(r"\toprule") + 1:lines.index(r"\midrule")]
    assert len(head) == 2 and "MAE" in head[0] and r"$\downarrow$" in head[1]
