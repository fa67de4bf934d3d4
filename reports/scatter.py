"""Clean-vs-robust scatter: x = clean score, y = AURC (mean over corruptions), one point per model."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from reports.style import ONE_COLUMN_IN, RC, model_colors, save


def clean_vs_robust(rob: pd.DataFrame, stem: str | Path, dataset: str | None = None,
                    metric: str = "") -> list[str]:
    """Scatter of each model's clean score ``m0`` (x) against its AURC averaged over corruptions
    (y), both ×100 in the higher-is-better mapping, with the diagonal y = x (no degradation).
    ``rob`` is :func:`reports.robustness.robustness_summary` output. Writes PNG and PDF."""
    for c in ("variant", "m0", "aurc", "dataset"):
        if c not in rob.columns:
            raise ValueError(f"clean_vs_robust: summary lacks column {c!r}; pass robustness_summary(...) output")
    data = rob if dataset is None else rob[rob["dataset"] == dataset]
    if data.empty or data["dataset"].nunique() != 1:
        raise ValueError(f"clean_vs_robust: need rows of exactly one dataset (got {sorted(data['dataset'].unique())}); "
                         "pass dataset=")
    pts = data.groupby("variant", sort=True).agg(clean=("m0", "mean"), aurc=("aurc", "mean")) * 100.0
    colors = model_colors(list(pts.index))
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(ONE_COLUMN_IN, ONE_COLUMN_IN * 0.85))
        for model, r in pts.iterrows():
            ax.scatter(r["clean"], r["aurc"], color=colors[model], s=18, label=model, zorder=3)
            ax.annotate(model, (r["clean"], r["aurc"]), textcoords="offset points", xytext=(3, 3), fontsize=6)
        lo = float(min(pts["clean"].min(), pts["aurc"].min()))
        hi = float(max(pts["clean"].max(), pts["aurc"].max()))
        pad = max(1.0, 0.05 * (hi - lo))
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], ls="--", lw=0.8, color="0.5", zorder=1)
        label = f" {metric}" if metric else ""
        ax.set_xlabel(f"clean{label} (%)")
        ax.set_ylabel(f"AURC{label} (%, mean over corruptions)")
        fig.tight_layout()
        return save(fig, str(stem))
