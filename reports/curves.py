"""Robustness curves: metric vs severity, one panel per corruption, CI bands across seeds."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from reports.style import ONE_COLUMN_IN, RC, TWO_COLUMN_IN, model_styles, save


def robustness_figure(summary: pd.DataFrame, metric: str, stem: str | Path, dataset: str | None = None,
                      variants: Sequence[str] | None = None,
                      styles: Mapping[str, Mapping[str, object]] | None = None) -> list[str]:
    """Plot the curves of :func:`reports.aggregate.curves` output; write PNG and PDF.

    One panel per corruption (defence ``none``), one line per model with its 95% CI band.
    ``variants`` restricts the lines to those model labels; ``styles`` (``model_styles`` over every
    label of the run) keeps a model's colour the same across figures that show different subsets.
    """
    data = summary[summary["defense"] == "none"]
    if dataset is not None:
        data = data[data["dataset"] == dataset]
    if variants is not None:
        data = data[data["variant"].isin(list(variants))]
    if data.empty:
        raise ValueError("robustness_figure: no rows to plot")
    corruptions = sorted(data["corruption"].unique())
    models = sorted(data["variant"].unique())
    styles = dict(styles) if styles is not None else model_styles(models)
    missing = [m for m in models if m not in styles]
    if missing:
        raise ValueError(f"robustness_figure: styles lacks models {missing}")
    ncols = min(3, len(corruptions))
    nrows = math.ceil(len(corruptions) / ncols)
    width = ONE_COLUMN_IN if ncols == 1 else TWO_COLUMN_IN
    with plt.rc_context(RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, 2.1 * nrows), squeeze=False, sharey=True)
        for ax, corr in zip(axes.flat, corruptions):
            panel = data[data["corruption"] == corr]
            for model in models:
                line = panel[panel["variant"] == model].sort_values("severity")
                if line.empty:
                    continue
                ax.plot(line["severity"], line["mean"], ms=3, label=model, **styles[model])
                ax.fill_between(line["severity"], line["ci_low"], line["ci_high"], color=styles[model]["color"],
                                alpha=0.2, linewidth=0)
                failed = line[line["failed"] > 0]
                if not failed.empty:
                    ax.scatter(failed["severity"], failed["mean"].fillna(0), marker="x", color=styles[model]["color"], s=20)
            ax.set_title(corr)
            ax.set_xlabel("severity")
            ax.set_xticks(range(0, 6))
        for ax in axes[:, 0]:
            ax.set_ylabel(metric)
        for ax in list(axes.flat)[len(corruptions):]:
            ax.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(models), 4), frameon=False,
                   bbox_to_anchor=(0.5, 1.0))
        fig.tight_layout()
        return save(fig, str(stem))
