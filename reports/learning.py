"""Learning curves from the training history the store keeps (``trainings.fit``).

For every model (one panel pair: the training loss above, the validation metric below) each
seed is one line, and the epoch selected on the validation split is marked with a dot. The
history stores the training loss and the validation metrics of every epoch; a validation loss
is drawn (dashed) only when the history has one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from harness.metrics import metric as metric_info
from reports.style import RC, TWO_COLUMN_IN, model_styles, save


def histories(trainings: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """One row per (model, seed, epoch) from ``ResultStore.dataframe("trainings")``: columns
    variant, dataset, seed, epoch, best_epoch, train_loss and the ``valid_*`` values. Failed
    trainings (no history) are left out."""
    rows: list[dict[str, Any]] = []
    for t in trainings.itertuples():
        if t.status != "ok" or (dataset is not None and t.dataset != dataset):
            continue
        fit = json.loads(t.fit) if isinstance(t.fit, str) else (t.fit or {})
        for h in fit.get("history") or []:
            rows.append({"variant": t.variant, "dataset": t.dataset, "seed": int(t.seed),
                         "best_epoch": fit.get("best_epoch"), **h})
    return pd.DataFrame(rows)


def learning_curves(hist: pd.DataFrame, metric: str, stem: str | Path, models: Sequence[str] | None = None,
                    styles: Mapping[str, Mapping[str, object]] | None = None, ncols: int = 6) -> list[str]:
    """Small multiples of :func:`histories` output: per model the training loss (top) and the
    validation ``metric`` (bottom, printed units) per epoch, one line per seed, the selected
    epoch marked. Writes PNG and PDF."""
    col = f"valid_{metric}"
    if hist.empty:
        raise ValueError("learning_curves: no training history stored")
    if col not in hist.columns:
        have = sorted(c[6:] for c in hist.columns if c.startswith("valid_"))
        raise ValueError(f"learning_curves: the history has no validation {metric!r}; it has {have}")
    m = metric_info(metric)
    models = [x for x in (models or sorted(hist["variant"].unique())) if x in set(hist["variant"])]
    styles = dict(styles) if styles is not None else model_styles(models)
    ncols = min(ncols, len(models))
    nrows = math.ceil(len(models) / ncols)
    has_valid_loss = "valid_loss" in hist.columns and hist["valid_loss"].notna().any()
    seeds = sorted(hist["seed"].unique())
    dashes = ["-", (0, (4, 1.5)), (0, (1, 1)), "-.", (0, (6, 2, 1, 2))]
    with plt.rc_context({**RC, "font.size": 6, "axes.titlesize": 6, "axes.labelsize": 6, "xtick.labelsize": 5,
                         "ytick.labelsize": 5}):
        fig, axes = plt.subplots(2 * nrows, ncols, figsize=(TWO_COLUMN_IN, 1.9 * nrows + 0.3), squeeze=False,
                                 sharex="col")
        for k, model in enumerate(models):
            r, c = 2 * (k // ncols), k % ncols
            top, bottom = axes[r][c], axes[r + 1][c]
            color = styles[model]["color"]
            for seed, h in hist[hist["variant"] == model].groupby("seed", sort=True):
                h = h.sort_values("epoch")
                ls = dashes[seeds.index(seed) % len(dashes)]
                top.plot(h["epoch"], h["train_loss"], color=color, lw=0.9, linestyle=ls)
                if has_valid_loss:
                    top.plot(h["epoch"], h["valid_loss"], color=color, lw=0.7, linestyle=":", alpha=0.8)
                bottom.plot(h["epoch"], h[col] * m.scale, color=color, lw=0.9, linestyle=ls)
                best = h[h["epoch"] == h["best_epoch"]]
                bottom.scatter(best["epoch"], best[col] * m.scale, color=color, s=8, zorder=3, edgecolors="black",
                               linewidths=0.3)
            top.set_title(model)
            if c == 0:
                top.set_ylabel("train loss")
                bottom.set_ylabel(f"valid {m.label()}")
            if r + 1 == 2 * nrows - 1 or k + ncols >= len(models):
                bottom.set_xlabel("epoch")
        for k in range(len(models), nrows * ncols):
            r, c = 2 * (k // ncols), k % ncols
            axes[r][c].set_visible(False)
            axes[r + 1][c].set_visible(False)
        handles = [Line2D([], [], color="0.3", lw=0.9, linestyle=dashes[i % len(dashes)], label=f"seed {s}")
                   for i, s in enumerate(seeds)]
        handles.append(Line2D([], [], color="0.3", marker="o", linestyle="none", markersize=3,
                              markeredgecolor="black", label="epoch selected on validation"))
        if has_valid_loss:
            handles.append(Line2D([], [], color="0.3", linestyle=":", label="valid loss"))
        fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), frameon=False)
        fig.tight_layout()
        return save(fig, str(stem))
