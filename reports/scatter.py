"""Clean-vs-robust scatter: x = clean score, y = AURC (mean over corruptions), one point per model.

Labels never overlap one another: adjustText moves them (with a thin leader line to their
point); if any two label boxes still intersect afterwards, every label is placed instead in a
column to the right of the axes, in the order of the points' heights, each joined to its point
by a leader line (:func:`label_overlaps` checks the boxes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from adjustText import adjust_text
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from harness.metrics import metric as metric_info
from reports.style import ONE_COLUMN_IN, RC, model_styles


def label_overlaps(fig: plt.Figure, texts: Sequence[plt.Text], pad_px: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of ``texts`` whose rendered bounding boxes (display pixels, shrunk by ``pad_px``)
    intersect."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for t in texts:
        b = Text.get_window_extent(t, renderer)  # the text alone, without an annotation's leader line
        boxes.append(Bbox.from_extents(b.x0 + pad_px, b.y0 + pad_px, b.x1 - pad_px, b.y1 - pad_px))
    out = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if boxes[i].overlaps(boxes[j]):
                out.append((texts[i].get_text(), texts[j].get_text()))
    return out


def _column_labels(fig: plt.Figure, ax: plt.Axes, pts: pd.DataFrame, texts: list[plt.Text]) -> list[plt.Text]:
    """Replace ``texts`` by labels stacked right of the axes, ordered by y, with leader lines."""
    for t in texts:
        t.remove()
    order = pts.sort_values("aurc", ascending=False)
    n = len(order)
    out = []
    for k, (model, r) in enumerate(order.iterrows()):
        y = 1.0 - (k + 0.5) / n
        out.append(ax.annotate(model, xy=(r["clean"], r["aurc"]), xycoords="data", xytext=(1.04, y),
                               textcoords="axes fraction", fontsize=6, va="center", ha="left",
                               arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.55", "shrinkA": 1,
                                           "shrinkB": 2, "relpos": (0.0, 0.5)}))
    return out


def clean_vs_robust(rob: pd.DataFrame, stem: str | Path, dataset: str | None = None, metric: str = "wf1",
                    styles: Mapping[str, Mapping[str, object]] | None = None,
                    keep: list[plt.Figure] | None = None) -> list[str]:
    """Scatter of each model's clean score ``m0`` (x) against its AURC averaged over corruptions
    (y), in the metric's printed units, with the diagonal y = x (no degradation). ``rob`` is
    :func:`reports.robustness.robustness_summary` output for ``metric``. Writes PNG and PDF;
    ``keep`` (a list) receives the figure, for tests that measure it."""
    for c in ("variant", "m0", "aurc", "dataset"):
        if c not in rob.columns:
            raise ValueError(f"clean_vs_robust: summary lacks column {c!r}; pass robustness_summary(...) output")
    data = rob if dataset is None else rob[rob["dataset"] == dataset]
    if data.empty or data["dataset"].nunique() != 1:
        raise ValueError(f"clean_vs_robust: need rows of exactly one dataset (got {sorted(data['dataset'].unique())}); "
                         "pass dataset=")
    m = metric_info(metric)
    pts = data.groupby("variant", sort=True).agg(clean=("m0", "mean"), aurc=("aurc", "mean")) * m.scale
    pts = pts.dropna()
    if pts.empty:
        raise ValueError("clean_vs_robust: no model has both a clean score and an AURC")
    styles = dict(styles) if styles is not None else model_styles(list(pts.index))
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(ONE_COLUMN_IN, ONE_COLUMN_IN * 0.9))
        for model, r in pts.iterrows():
            st = styles[model]
            ax.scatter(r["clean"], r["aurc"], color=st["color"], marker=st["marker"], s=22, zorder=3,
                       edgecolors="white", linewidths=0.4)
        # each axis spans its own data (the diagonal is clipped), so crowded points spread out
        lo = float(min(pts["clean"].min(), pts["aurc"].min()))
        hi = float(max(pts["clean"].max(), pts["aurc"].max()))
        ax.plot([lo - 1e3, hi + 1e3], [lo - 1e3, hi + 1e3], ls="--", lw=0.8, color="0.5", zorder=1)
        for lim, col in ((ax.set_xlim, "clean"), (ax.set_ylim, "aurc")):
            a, b = float(pts[col].min()), float(pts[col].max())
            pad = max(0.01 * m.scale, 0.12 * (b - a))
            lim(a - pad, b + pad)
        ax.set_xlabel(f"Clean {m.label()}")
        ax.set_ylabel(f"AURC, mean over corruptions: {m.label()}")
        ax.text(0.02, 0.98, "dashed y = x: no loss under corruption", transform=ax.transAxes, ha="left", va="top",
                fontsize=6, color="0.4")
        texts = [ax.text(r["clean"], r["aurc"], model, fontsize=6) for model, r in pts.iterrows()]
        fig.tight_layout()
        if len(texts) > 1:
            before = set(ax.get_children()) | set(fig.get_children())
            adjust_text(texts, ax=ax, x=list(pts["clean"]), y=list(pts["aurc"]), expand=(1.15, 1.3),
                        arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.55"})
            if label_overlaps(fig, texts):
                for artist in (set(ax.get_children()) | set(fig.get_children())) - before:
                    artist.remove()  # adjustText's leader lines point at the labels replaced below
                texts = _column_labels(fig, ax, pts, texts)
        fig._mcer_labels = texts  # the labels, for tests that check their boxes
        if keep is not None:
            keep.append(fig)
        paths = [f"{stem}.png", f"{stem}.pdf"]
        for p in paths:
            fig.savefig(p)  # inside RC: fonts embedded as TrueType
        if keep is None:
            plt.close(fig)
        return paths

