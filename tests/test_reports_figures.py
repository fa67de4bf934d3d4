"""Heatmap, scatter and ablation figures: files written, expected axes and bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import reports.ablation
import reports.heatmap
import reports.scatter
from reports.robustness import robustness_summary


def _rob() -> pd.DataFrame:
    rows = []
    curves = {"a": [0.8, 0.7, 0.6, 0.5, 0.4, 0.3], "b": [0.7] * 6, "c": [0.9, 0.85, 0.8, 0.75, 0.7, 0.65]}
    for m, vals in curves.items():
        for k, corr in enumerate(["audio-white", "video-fog", "text-asr"]):
            for s, v in enumerate(vals):
                rows.append({"dataset": "synthetic", "variant": m, "corruption": corr, "defense": "none",
                             "severity": s, "mean": v - 0.01 * k * s})
    return robustness_summary(pd.DataFrame(rows), "wf1")


@pytest.fixture
def captured(monkeypatch):
    figs = []
    for mod in (reports.heatmap, reports.ablation):
        real = mod.save
        monkeypatch.setattr(mod, "save", lambda fig, stem, _real=real: (figs.append(fig), _real(fig, stem))[1])
    return figs


def _check_files(paths):
    assert [p[-3:] for p in paths] == ["png", "pdf"]
    for p in paths:
        with open(p, "rb") as f:
            head = f.read(8)
        assert head[:4] in (b"\x89PNG", b"%PDF")
        assert len(head) == 8


def test_heatmap(tmp_path, captured):
    paths = reports.heatmap.drop_heatmap(_rob(), 5, tmp_path / "heat", groups=[["c", "a"], ["b"]],
                                         titles={"audio-white": "White noise (audio)"}, metric_display="wF1")
    _check_files(paths)
    fig = captured[-1]
    assert len(fig.axes) == 2  # heatmap + colour bar
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (3, 3)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["c", "a", "b"]  # grouped, in group order
    # model a, any corruption: drop (0.8 - (0.3 - 0.05k)) / 0.8 -> at k=0 62.5 %
    assert img[1, 0] == pytest.approx(62.5)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 9 and texts[3] in ("62", "63")
    assert not any(t.startswith("-0") for t in texts)
    assert fig.axes[1].get_ylabel() == "Relative drop of wF1 at severity 5 (%)"
    assert "White noise\n(audio)" in [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(fig.axes[0].lines) == 1  # the rule between the two groups
    with pytest.raises(ValueError, match="severity 7"):
        reports.heatmap.drop_heatmap(_rob(), 7, tmp_path / "x")


def test_heatmap_prints_no_negative_zero(tmp_path, captured):
    rob = _rob()
    rob.loc[0, "rel_drop_5"] = -0.002  # -0.2 % rounds to 0
    reports.heatmap.drop_heatmap(rob, 5, tmp_path / "heat0")
    texts = [t.get_text() for t in captured[-1].axes[0].texts]
    assert "-0" not in texts and "0" in texts


def test_scatter(tmp_path):
    kept = []
    paths = reports.scatter.clean_vs_robust(_rob(), tmp_path / "sc", metric="wf1", keep=kept)
    _check_files(paths)
    ax = kept[-1].axes[0]
    pts = np.vstack([c.get_offsets() for c in ax.collections])
    assert pts.shape == (3, 2)
    # model b: flat 0.7 on the first corruption, aurc averaged over corruptions
    assert pts[1, 0] == pytest.approx(70.0)
    assert np.all(pts[:, 1] <= pts[:, 0] + 1e-9)
    assert ax.get_xlabel() == "Clean wF1 (%) ↑"


def test_ablation_figure(tmp_path, captured):
    rows = pd.DataFrame({"variant": ["no-a", "no-v", "no-a", "no-v"], "setting": ["clean", "clean", "worst", "worst"],
                         "condition": ["clean", "clean", "noise@5", "noise@5"], "corruption": ["clean"] * 2 + ["noise"] * 2,
                         "severity": [0, 0, 5, 5], "delta": [-0.2, 0.01, -0.3, -0.05],
                         "ci_low": [-0.25, -0.02, -0.36, -0.1], "ci_high": [-0.15, 0.04, -0.24, 0.0],
                         "significant": [True, False, True, False]})
    paths = reports.ablation.ablation_figure(rows, tmp_path / "abl", metric="wf1", titles={"noise": "White noise"})
    _check_files(paths)
    fig = captured[-1]
    assert len(fig.axes) == 2
    for ax, want in zip(fig.axes, ([-20.0, 1.0], [-30.0, -5.0])):
        bars = ax.patches
        assert len(bars) == 2
        assert [b.get_width() for b in bars] == pytest.approx(want)
        assert bars[0].get_hatch() == "///" and not bars[1].get_hatch()
    assert fig.axes[1].get_title() == "White noise, severity 5"
    worse, better = reports.ablation.WORSE, reports.ablation.BETTER
    import matplotlib.colors as mc

    assert mc.to_hex(fig.axes[0].patches[0].get_facecolor()) == worse.lower()
    assert mc.to_hex(fig.axes[0].patches[1].get_facecolor()) == better.lower()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "significant (paired, Holm p < 0.05)" in legend and "worse than the full model" in legend
    # for MAE a positive delta is worse: the colours follow the direction
    reports.ablation.ablation_figure(rows, tmp_path / "abl_mae", metric="mae")
    assert mc.to_hex(captured[-1].axes[0].patches[0].get_facecolor()) == better.lower()
    with pytest.raises(ValueError, match="lack columns"):
        reports.ablation.ablation_figure(rows.drop(columns=["delta"]), tmp_path / "y")


def test_model_styles_are_unique_beyond_the_palette():
    from reports.style import model_styles

    labels = [f"model-{i:02d}" for i in range(23)]
    styles = model_styles(labels)
    looks = {(s["color"], s["marker"], s["linestyle"]) for s in styles.values()}
    assert len(looks) == len(labels)
    assert model_styles(labels[:3])["model-00"] == styles["model-00"]  # a label's look needs no other label
