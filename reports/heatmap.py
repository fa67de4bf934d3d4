"""Relative-drop heatmap: models x corruptions at one severity, from :mod:`reports.robustness`."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reports.latex import fmt
from reports.style import ONE_COLUMN_IN, RC, TWO_COLUMN_IN, save


def drop_heatmap(rob: pd.DataFrame, severity: int, stem: str | Path, dataset: str | None = None,
                 groups: Sequence[Sequence[str]] | None = None, titles: Mapping[str, str] | None = None,
                 metric_display: str = "") -> list[str]:
    """Heatmap of ``rel_drop_<severity>`` (×100: % of clean performance lost, or % growth of the
    error for a lower-is-better metric) with models as rows, grouped by ``groups`` (full model
    and baselines, then ablation variants, with a rule between), and corruptions as columns
    titled by ``titles``; cells annotated (never "-0"), colour bar labelled. Writes PNG and PDF."""
    col = f"rel_drop_{severity}"
    if col not in rob.columns:
        have = sorted(c for c in rob.columns if c.startswith("rel_drop_"))
        raise ValueError(f"drop_heatmap: severity {severity} has no column {col!r}; available {have}")
    data = rob if dataset is None else rob[rob["dataset"] == dataset]
    if data.empty or data["dataset"].nunique() != 1:
        raise ValueError(f"drop_heatmap: need rows of exactly one dataset (got {sorted(data['dataset'].unique())}); "
                         "pass dataset=")
    titles = dict(titles or {})
    grid = data.pivot_table(index="variant", columns="corruption", values=col, aggfunc="first", dropna=False) * 100.0
    groups = [list(g) for g in (groups or [sorted(grid.index)])]
    order = [v for g in groups for v in g if v in grid.index]
    grid = grid.reindex(order)
    grid = grid[sorted(grid.columns, key=lambda c: titles.get(c, c))]
    values = grid.to_numpy(dtype=float)
    n_models, n_corr = values.shape
    width = ONE_COLUMN_IN if n_corr <= 5 else TWO_COLUMN_IN
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(width, 0.22 * n_models + 1.3))
        finite = values[np.isfinite(values)]
        vmax = max(float(finite.max()), 1e-9) if finite.size else 1.0
        vmin = min(0.0, float(finite.min())) if finite.size else 0.0
        im = ax.imshow(values, cmap="Reds", vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(n_corr), [textwrap.fill(titles.get(c, c), 12) for c in grid.columns], rotation=0,
                      fontsize=6)
        ax.set_yticks(range(n_models), list(grid.index))
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        for i in range(n_models):
            for j in range(n_corr):
                v = values[i, j]
                dark = not np.isnan(v) and v > 0.6 * vmax
                ax.text(j, i, fmt(v, 0), ha="center", va="center", fontsize=6, color="white" if dark else "black")
        row = 0
        for g in groups[:-1]:
            row += len([v for v in g if v in grid.index])
            ax.axhline(row - 0.5, color="black", lw=1.0)
        what = f"{metric_display} " if metric_display else ""
        cbar = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
        cbar.set_label(f"Relative drop of {what}at severity {severity} (%)")
        ax.set_title(f"Relative drop at severity {severity} (% of the clean score; higher is worse)")
        return save(fig, str(stem))
