"""Ablation bar chart: each variant's difference to the full model with its CI."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reports.style import ONE_COLUMN_IN, RC, save


def ablation_figure(rows: pd.DataFrame, stem: str | Path, metric: str = "", scale: float = 100.0) -> list[str]:
    """Horizontal bars of ``delta`` (variant − full, ×``scale``) with ``ci_low``/``ci_high``
    error bars, one panel per setting (``clean``/``worst``) of
    :func:`reports.latex.ablation_rows`; significant rows (``significant``) are hatched.
    Writes PNG and PDF."""
    need = {"variant", "setting", "condition", "delta", "ci_low", "ci_high"}
    missing = need - set(rows.columns)
    if missing:
        raise ValueError(f"ablation_figure: rows lack columns {sorted(missing)}; pass ablation_rows(...) output")
    if rows.empty:
        raise ValueError("ablation_figure: no rows to plot")
    settings = list(dict.fromkeys(rows["setting"]))
    variants = list(dict.fromkeys(rows["variant"]))
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, len(settings), figsize=(ONE_COLUMN_IN * (1 if len(settings) == 1 else 2) * 0.9,
                                                             0.3 * len(variants) + 0.9), sharey=True, squeeze=False)
        for ax, setting in zip(axes[0], settings):
            g = rows[rows["setting"] == setting].set_index("variant").reindex(variants)
            delta = g["delta"].to_numpy(float) * scale
            err = np.vstack([delta - g["ci_low"].to_numpy(float) * scale, g["ci_high"].to_numpy(float) * scale - delta])
            err = np.where(np.isnan(err), 0.0, np.abs(err))
            sig = g["significant"].fillna(False).to_numpy(bool) if "significant" in g else np.zeros(len(g), bool)
            colors = ["#0173b2" if d >= 0 else "#de8f05" for d in np.nan_to_num(delta)]
            bars = ax.barh(range(len(variants)), np.nan_to_num(delta), xerr=err, color=colors, capsize=2,
                           error_kw={"lw": 0.8})
            for b, s in zip(bars, sig):
                if s:
                    b.set_hatch("///")
            ax.axvline(0, color="0.3", lw=0.8)
            ax.set_title(str(g["condition"].dropna().iloc[0]) if g["condition"].notna().any() else setting)
            ax.set_xlabel(f"Δ {metric} to full".strip() + (" (pts)" if scale == 100 else ""))
        axes[0][0].set_yticks(range(len(variants)), variants)
        axes[0][0].invert_yaxis()
        fig.tight_layout()
        return save(fig, str(stem))
