"""Ablation bar chart: each variant's Δ to the full model (the table's Δ) with its 95% interval."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from harness.metrics import metric as metric_info
from reports.style import ONE_COLUMN_IN, RC, save

BETTER, WORSE = "#4477AA", "#EE7733"


def ablation_figure(rows: pd.DataFrame, stem: str | Path, metric: str = "wf1",
                    titles: Mapping[str, str] | None = None) -> list[str]:
    """Horizontal bars of ``delta`` (variant − full, in the metric's printed units) with the
    ``ci_low``/``ci_high`` interval, one panel per setting (``clean``/``worst``) of
    :func:`reports.ablation_table.ablation_rows`. A bar is blue when the variant does better
    than the full model and orange when worse (in the metric's direction: for MAE a negative Δ
    is better), and hatched when the paired difference is significant (Holm-adjusted
    p < 0.05); the legend says so. ``titles`` names the corruptions in words. Writes PNG and PDF."""
    need = {"variant", "setting", "condition", "delta", "ci_low", "ci_high"}
    missing = need - set(rows.columns)
    if missing:
        raise ValueError(f"ablation_figure: rows lack columns {sorted(missing)}; pass ablation_rows(...) output")
    if rows.empty:
        raise ValueError("ablation_figure: no rows to plot")
    m = metric_info(metric)
    scale = m.scale
    settings = list(dict.fromkeys(rows["setting"]))
    variants = list(dict.fromkeys(rows["variant"]))
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, len(settings), figsize=(ONE_COLUMN_IN * (1 if len(settings) == 1 else 2) * 0.95,
                                                             0.22 * len(variants) + 1.2), sharey=True, squeeze=False)
        for ax, setting in zip(axes[0], settings):
            g = rows[rows["setting"] == setting].set_index("variant").reindex(variants)
            delta = g["delta"].to_numpy(float) * scale
            err = np.vstack([delta - g["ci_low"].to_numpy(float) * scale, g["ci_high"].to_numpy(float) * scale - delta])
            err = np.where(np.isnan(err), 0.0, np.abs(err))
            sig = g["significant"].fillna(False).to_numpy(bool) if "significant" in g else np.zeros(len(g), bool)
            better = np.nan_to_num(delta) > 0 if m.higher_is_better else np.nan_to_num(delta) < 0
            colors = [BETTER if b else WORSE for b in better]
            bars = ax.barh(range(len(variants)), np.nan_to_num(delta), xerr=err, color=colors, capsize=2,
                           error_kw={"lw": 0.8}, edgecolor="black", linewidth=0.3)
            for b, s in zip(bars, sig):
                if s:
                    b.set_hatch("///")
            ax.axvline(0, color="0.3", lw=0.8)
            first = rows[rows["setting"] == setting].iloc[0]
            if setting == "clean" or "corruption" not in rows.columns:
                ax.set_title("Clean" if setting == "clean" else str(first["condition"]))
            else:
                name = (titles or {}).get(first["corruption"], first["corruption"])
                ax.set_title(f"{name}, severity {int(first['severity'])}")
            unit = " (points)" if m.unit == "%" else ""
            ax.set_xlabel(f"Δ {m.display} to the full model{unit}")
        axes[0][0].set_yticks(range(len(variants)), variants)
        axes[0][0].invert_yaxis()
        handles = [Patch(facecolor=BETTER, edgecolor="black", linewidth=0.3, label="better than the full model"),
                   Patch(facecolor=WORSE, edgecolor="black", linewidth=0.3, label="worse than the full model"),
                   Patch(facecolor="white", edgecolor="black", hatch="///", linewidth=0.3,
                         label="significant (paired, Holm p < 0.05)"),
                   plt.Line2D([], [], color="black", lw=0.8, label="95% interval")]
        fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
        fig.tight_layout()
        return save(fig, str(stem))
