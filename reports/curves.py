"""Robustness curves: the metric against severity, one panel per corruption.

* :func:`robustness_figure` -- the full model and the baselines, one line per model with its
  95% interval band across seeds.
* :func:`ablation_curves` -- the ablation variants as small multiples: one row of panels per
  ablation switch (its variants beside the full model, drawn black and thicker), one column
  per corruption; no two lines of a panel look alike.

Both label the y axis with the metric's display name, unit and direction, title the panels in
words, and show under each severity the corruption's physical parameter (stored with each
row). A point with no successful seed is drawn as a hollow cross on the axis floor, with a
legend entry, never at a data value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from harness.metrics import metric as metric_info
from reports.latex import split_words
from reports.style import (
    FAILED_MARKER,
    FULL_MODEL_LINEWIDTH,
    RC,
    TWO_COLUMN_IN,
    line_kwargs,
    model_styles,
    save,
    variant_parts,
)

FAILED_LABEL = "no successful seed"


def split_value(text: str) -> tuple[str, str]:
    """A stored parameter value ``"20 dB"`` -> ``("20", "dB")``; ``"0.15 of frame side"`` ->
    ``("0.15", "of frame side")``; text without a leading number -> ``(text, "")``."""
    m = re.match(r"^\s*([-+]?[\d.]+(?:e[-+]?\d+)?)\s*(.*)$", text or "")
    return (m.group(1), m.group(2).strip()) if m else ((text or "").strip(), "")


def severity_ticks(panel: pd.DataFrame) -> tuple[list[int], list[str], str]:
    """Severities of a panel, their tick labels ``"3\n10"`` (the index, then the physical value;
    severity 0 is clean and shows the index alone) and the unit of the values (``"dB"``)."""
    sev = sorted(int(s) for s in panel["severity"].unique())
    labels, units = [], set()
    for s in sev:
        vals = panel[panel["severity"] == s]["parameter_value"] if "parameter_value" in panel else pd.Series([])
        number, unit = split_value(next((str(x) for x in vals if isinstance(x, str) and x), ""))
        if s and unit:
            units.add(unit)
        labels.append(f"{s}\n{number if s else ''}")
    return sev, labels, ", ".join(sorted(units))


def parameter_name(panel: pd.DataFrame) -> str:
    vals = panel["parameter"] if "parameter" in panel else pd.Series([])
    return next((str(x) for x in vals if isinstance(x, str) and x), "")


def axis_label(panel: pd.DataFrame, unit: str) -> str:
    """``"severity / snr\n(dB)"``: what the two tick lines show (the unit on a line of its own)."""
    p = parameter_name(panel).replace("_", " ")
    p = re.sub(r"\s*\b(db|px|s|ms)$", "", p)  # the unit follows in brackets
    return f"severity / {p}" + (f"\n({unit})" if unit else "") if p else "severity"


def _draw_panel(ax: plt.Axes, panel: pd.DataFrame, models: Sequence[str], styles: Mapping[str, Mapping],
                scale: float, bands: bool | Sequence[str], full_model: str | None) -> bool:
    """Lines of ``models`` on ``ax``; returns whether a failed point was drawn."""
    any_failed = False
    for model in models:
        line = panel[panel["variant"] == model].sort_values("severity")
        if line.empty:
            continue
        kw = line_kwargs(styles[model])
        if model == full_model:
            kw.update(color="#000000", linewidth=FULL_MODEL_LINEWIDTH, zorder=4)
        ok = line[line["mean"].notna()]
        ax.plot(ok["severity"], ok["mean"] * scale, label=model, **kw)
        if (bands is True or (not isinstance(bands, bool) and model in bands)) and ok["n_seeds"].max() > 1:
            ax.fill_between(ok["severity"], ok["ci_low"] * scale, ok["ci_high"] * scale, color=kw["color"],
                            alpha=0.12, linewidth=0)
        failed = line[line["mean"].isna() & (line["failed"] > 0)]
        if not failed.empty:
            any_failed = True
            ax.scatter(failed["severity"], np.full(len(failed), 0.02), transform=ax.get_xaxis_transform(),
                       clip_on=False, **FAILED_MARKER)
    return any_failed


def _format_axes(ax: plt.Axes, panel: pd.DataFrame, title: str) -> None:
    sev, labels, unit = severity_ticks(panel)
    ax.set_xticks(sev, labels)
    ax.set_title(title)
    ax.set_xlabel(axis_label(panel, unit))
    ax.grid(axis="y", lw=0.3, color="0.85")


def _failed_handle() -> Line2D:
    kw = FAILED_MARKER
    return Line2D([], [], linestyle="none", marker=kw["marker"], markerfacecolor=kw["facecolors"],
                  markeredgecolor=kw["edgecolors"], markersize=5, label=FAILED_LABEL)


def _panels(data: pd.DataFrame, titles: Mapping[str, str] | None) -> tuple[list[str], dict[str, str]]:
    titles = dict(titles or {})
    corrs = sorted(data["corruption"].unique(), key=lambda c: titles.get(c, c))
    return corrs, {c: titles.get(c, c) for c in corrs}


def robustness_figure(summary: pd.DataFrame, metric: str, stem: str | Path, dataset: str | None = None,
                      variants: Sequence[str] | None = None, styles: Mapping[str, Mapping[str, object]] | None = None,
                      titles: Mapping[str, str] | None = None, full_model: str | None = None) -> list[str]:
    """Plot :func:`reports.aggregate.curves` output (defence ``none``): one panel per corruption,
    one line per model of ``variants`` (default all) with its 95% band; write PNG and PDF."""
    data = summary[summary["defense"] == "none"]
    if dataset is not None:
        data = data[data["dataset"] == dataset]
    if variants is not None:
        data = data[data["variant"].isin(list(variants))]
    if data.empty:
        raise ValueError("robustness_figure: no rows to plot")
    m = metric_info(metric)
    models = sorted(data["variant"].unique(), key=lambda v: (v != full_model, v))
    styles = dict(styles) if styles is not None else model_styles(models)
    missing = [x for x in models if x not in styles]
    if missing:
        raise ValueError(f"robustness_figure: styles lacks models {missing}")
    corrs, names = _panels(data, titles)
    ncols = min(3, len(corrs))
    nrows = math.ceil(len(corrs) / ncols)
    any_failed = False
    with plt.rc_context(RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(TWO_COLUMN_IN if ncols > 1 else 3.5, 1.9 * nrows + 0.4),
                                 squeeze=False, sharey=True)
        for ax, corr in zip(axes.flat, corrs):
            panel = data[data["corruption"] == corr]
            any_failed |= _draw_panel(ax, panel, models, styles, m.scale, True, full_model)
            _format_axes(ax, panel, names[corr])
        for ax in axes[:, 0]:
            ax.set_ylabel(m.label())
        for ax in list(axes.flat)[len(corrs):]:
            ax.set_visible(False)
        handles = [Line2D([], [], **line_kwargs(styles[x]), label=x) if x != full_model else
                   Line2D([], [], color="#000000", marker=styles[x]["marker"], linewidth=FULL_MODEL_LINEWIDTH,
                          label=f"{x} (full model)") for x in models]
        if any_failed:
            handles.append(_failed_handle())
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), frameon=False,
                   bbox_to_anchor=(0.5, 1.0))
        fig.tight_layout()
        return save(fig, str(stem))


def switch_groups(variants: Sequence[str], min_size: int = 2) -> list[tuple[str, list[str]]]:
    """Ablation variants grouped by switch (``mcer[graphs=none]`` -> ``graphs``); switches with
    fewer than ``min_size`` variants, and labels without a switch, share an "other switches"
    group. Groups in name order."""
    groups: dict[str, list[str]] = {}
    for v in sorted(variants):
        parts = variant_parts(v)
        groups.setdefault(parts[1] if parts else "", []).append(v)
    out, other = [], []
    for switch, members in sorted(groups.items()):
        if switch and len(members) >= min_size:
            out.append((switch, members))
        else:
            other += members
    if other:
        out.append(("other switches", sorted(other)))
    return out


def ablation_curves(summary: pd.DataFrame, metric: str, stem: str | Path, full_model: str, variants: Sequence[str],
                    dataset: str | None = None, styles: Mapping[str, Mapping[str, object]] | None = None,
                    titles: Mapping[str, str] | None = None) -> list[str]:
    """Small multiples of the ablation: rows = switch groups (:func:`switch_groups`), columns =
    corruptions; each panel shows the full model (black, thick, with its 95% band) and that
    switch's variants. Writes PNG and PDF."""
    data = summary[summary["defense"] == "none"]
    if dataset is not None:
        data = data[data["dataset"] == dataset]
    data = data[data["variant"].isin([full_model, *variants])]
    if data.empty or full_model not in set(data["variant"]):
        raise ValueError(f"ablation_curves: no rows of the full model {full_model!r}")
    m = metric_info(metric)
    groups = switch_groups([v for v in variants if v in set(data["variant"])])
    if not groups:
        raise ValueError("ablation_curves: no ablation variant has rows")
    styles = dict(styles) if styles is not None else model_styles([full_model, *variants])
    corrs, names = _panels(data, titles)
    ncols = len(corrs)
    any_failed = False
    with plt.rc_context({**RC, "font.size": 7, "axes.titlesize": 7, "xtick.labelsize": 6, "ytick.labelsize": 6}):
        width = TWO_COLUMN_IN
        fig, axes = plt.subplots(len(groups), ncols, figsize=(width, 1.45 * len(groups) + 0.3), squeeze=False,
                                 sharey=True, sharex="col")
        for r, (switch, members) in enumerate(groups):
            for c, corr in enumerate(corrs):
                ax = axes[r][c]
                panel = data[data["corruption"] == corr]
                any_failed |= _draw_panel(ax, panel, [full_model, *members], styles, m.scale, [full_model],
                                          full_model)
                sev, labels, unit = severity_ticks(panel)
                ax.set_xticks(sev, labels if r == len(groups) - 1 else [""] * len(sev))
                ax.grid(axis="y", lw=0.3, color="0.85")
                if r == 0:
                    ax.set_title(split_words(names[corr], 14))
                if r == len(groups) - 1:
                    ax.set_xlabel(axis_label(panel, unit), fontsize=6)
            axes[r][0].set_ylabel(f"{switch}\n{m.label()}")
            handles = [Line2D([], [], color="#000000", linewidth=FULL_MODEL_LINEWIDTH, label=f"{full_model} (full)")]
            handles += [Line2D([], [], **line_kwargs(styles[v]), label=_short(v)) for v in members]
            axes[r][-1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False,
                               fontsize=6)
        if any_failed:
            fig.legend(handles=[_failed_handle()], loc="lower right", frameon=False, fontsize=6)
        fig.tight_layout()
        return save(fig, str(stem))


def _short(label: str) -> str:
    """``mcer[graphs=none]`` -> ``graphs=none`` for a legend beside its switch's row."""
    parts = variant_parts(label)
    return f"{parts[1]}={parts[2]}" if parts else label
