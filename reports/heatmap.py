"""Relative-drop heatmap: models × corruptions at one severity, from :mod:`reports.robustness`."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reports.style import ONE_COLUMN_IN, RC, TWO_COLUMN_IN, save


def drop_heatmap(rob: pd.DataFrame, severity: int, stem: str | Path, dataset: str | None = None) -> list[str]:
    """Heatmap of ``rel_drop_<severity>`` (×100, % of clean performance lost) with models as rows
    and corruptions as columns, values annotated. ``rob`` is
    :func:`reports.robustness.robustness_summary` output. Writes ``stem.png`` and ``stem.pdf``."""
    col = f"rel_drop_{severity}"
    if col not in rob.columns:
        have = sorted(c for c in rob.columns if c.startswith("rel_drop_"))
        raise ValueError(f"drop_heatmap: severity {severity} has no column {col!r}; available {have}")
    data = rob if dataset is None else rob[rob["dataset"] == dataset]
    if data.empty or data["dataset"].nunique() != 1:
        raise ValueError(f"drop_heatmap: need rows of exactly one dataset (got {sorted(data['dataset'].unique())}); "
                         "pass dataset=")
    grid = data.pivot_table(index="variant", columns="corruption", values=col, aggfunc="first") * 100.0
    grid = grid.sort_index().sort_index(axis=1)
    values = grid.to_numpy(dtype=float)
    n_models, n_corr = values.shape
    width = ONE_COLUMN_IN if n_corr <= 5 else TWO_COLUMN_IN
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(width, 0.35 * n_models + 1.0))
        finite = values[np.isfinite(values)]
        vmax = max(float(finite.max()), 1e-9) if finite.size else 1.0
        im = ax.imshow(values, cmap="Reds", vmin=min(0.0, float(finite.min()) if finite.size else 0.0), vmax=vmax,
                       aspect="auto")
        ax.set_xticks(range(n_corr), list(grid.columns), rotation=45, ha="right")
        ax.set_yticks(range(n_models), list(grid.index))
        for i in range(n_models):
            for j in range(n_corr):
                v = values[i, j]
                txt = "–" if np.isnan(v) else f"{v:.0f}"
                dark = not np.isnan(v) and v > 0.6 * vmax
                ax.text(j, i, txt, ha="center", va="center", fontsize=6, color="white" if dark else "black")
        ax.set_title(f"relative drop at severity {severity} (%)")
        fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)  # long tick labels: the bbox="tight" save crops
        return save(fig, str(stem))
