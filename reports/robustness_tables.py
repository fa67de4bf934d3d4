"""Robustness tables from :func:`reports.robustness.robustness_summary` output.

* :func:`robustness_overview_table` -- one row per model, the headline metric's clean score,
  its AURC under each corruption, their mean and (with a reference) mCE: the table a paper
  prints.
* :func:`robustness_metric_table` -- one float per corruption: AURC of every metric of the
  dataset's set, and the headline metric's drop at the worst severity and CE.

Every summary is computed on the metric itself (docs/METRICS.md §3): for MAE a lower AURC is
better and the drop is the relative growth of the error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from harness.metrics import metric
from reports.latex import Table, best_mask, fmt, split_words


def _value(rob: pd.DataFrame, variant: str, corruption: str, col: str) -> float:
    r = rob[(rob["variant"] == variant) & (rob["corruption"] == corruption)]
    return float(r[col].iloc[0]) if len(r) and col in r.columns else float("nan")


def _scaled(name: str, value: float) -> float:
    return value * metric(name).scale


def _column(values: Sequence[float], name: str, higher: bool) -> tuple[list[str], list[bool]]:
    m = metric(name)
    return [fmt(v, m.decimals) for v in values], best_mask(values, higher, m.decimals)


def _blocks(groups: Sequence[Sequence[str]]) -> list[int]:
    return [int(b) for b in np.cumsum([len(g) for g in groups])[:-1] - 1]


def robustness_overview_table(rob: pd.DataFrame, metric_name: str, groups: Sequence[Sequence[str]],
                              titles: Mapping[str, str], dataset: str, n_text: str,
                              mce: pd.DataFrame | None = None, reference: str | None = None) -> Table:
    """Rows: the models of ``groups``; columns: clean score, AURC per corruption (titled in
    words by ``titles``), mean AURC over corruptions, and mCE (×100, lower is better) when
    ``mce`` (from :func:`reports.robustness.mce_table`) is given."""
    m = metric(metric_name)
    corrs = sorted(rob["corruption"].unique(), key=lambda c: titles.get(c, c))
    models = [v for g in groups for v in g]
    table: list[list[str]] = [[v] for v in models]
    bold: list[list[bool]] = [[False] for _ in models]
    header = ["Model", "Clean"]

    def add(values: list[float], name: str, higher: bool, scale: float | None = None) -> None:
        vals = [v * (m.scale if scale is None else scale) for v in values]
        digits = m.decimals if scale is None else 1
        texts, mask = [fmt(v, digits) for v in vals], best_mask(vals, higher, digits)
        for i in range(len(models)):
            table[i].append(texts[i])
            bold[i].append(mask[i])

    first = {v: rob[rob["variant"] == v]["m0"].dropna() for v in models}
    add([float(first[v].iloc[0]) if len(first[v]) else np.nan for v in models], "m0", m.higher_is_better)
    for c in corrs:
        header.append(split_words(titles.get(c, c)))
        add([_value(rob, v, c, "aurc") for v in models], c, m.higher_is_better)
    header.append("Mean\nAURC")
    add([float(rob[rob["variant"] == v]["aurc"].mean()) for v in models], "mean", m.higher_is_better)
    if mce is not None and len(mce):
        header.append("mCE\n(%) ↓")
        mc = mce.set_index("variant")["mce"]
        add([float(mc.get(v, np.nan)) for v in models], "mce", False, scale=100.0)
    unit = f" ({m.unit})" if m.unit else ""
    better = "higher" if m.higher_is_better else "lower"
    note = (f"{m.display}{unit}, {better} is better ({m.arrow}): clean score, then the area under the severity "
            f"curve (AURC, severities 0 to the highest run, divided by their span) under each corruption. "
            f"Values of the seed-mean curve, {n_text}. Best per column in bold.")
    if mce is not None and len(mce):
        note += f" mCE: corruption error relative to {reference} (= 100), mean over corruptions."
    return Table(header, table, bold, blocks=_blocks(groups), caption=f"Robustness on {dataset} ({m.display}).",
                 label=f"tab:robustness-{dataset}", note=note)


def robustness_metric_table(robs: Mapping[str, pd.DataFrame], headline: str, corruption: str,
                            groups: Sequence[Sequence[str]], title: str, dataset: str, n_text: str,
                            reference: str | None = None, label_suffix: str = "") -> Table:
    """One corruption: AURC of every metric in ``robs`` (``metric -> robustness_summary``),
    then the ``headline`` metric's drop at the worst severity (%, lower is better) and CE
    (×100, lower is better) when computed."""
    models = [v for g in groups for v in g]
    header, columns = ["Model"], []
    for name, rob in robs.items():
        m = metric(name)
        vals = [_scaled(name, _value(rob, v, corruption, "aurc")) for v in models]
        texts, mask = _column(vals, name, m.higher_is_better)
        header.append(f"{m.display}\n{('(' + m.unit + ') ') if m.unit else ''}{m.arrow}")
        columns.append((texts, mask))
    hrob = robs[headline]
    worst = hrob[hrob["corruption"] == corruption]["worst_severity"].dropna()
    if len(worst):
        s = int(worst.max())
        vals = [_value(hrob, v, corruption, f"rel_drop_{s}") * 100 for v in models]
        columns.append(([fmt(v, 1) for v in vals], best_mask(vals, False, 1)))
        header.append(f"Drop@{s}\n(%) ↓")
    if "ce" in hrob.columns:
        vals = [_value(hrob, v, corruption, "ce") * 100 for v in models]
        columns.append(([fmt(v, 1) for v in vals], best_mask(vals, False, 1)))
        header.append("CE\n(%) ↓")
    rows = [[v] + [col[0][i] for col in columns] for i, v in enumerate(models)]
    bold = [[False] + [col[1][i] for col in columns] for i in range(len(models))]
    hm = metric(headline)
    note = (f"AURC of each metric under {title} (area under the seed-mean severity curve divided by the severity "
            f"span; {n_text}). Drop: {hm.display}'s relative loss at the highest severity, (m0 − m_s)/m0 for a "
            f"higher-is-better metric and (m_s − m0)/m0 for a lower-is-better one.")
    if "ce" in hrob.columns:
        note += f" CE: {hm.display} corruption error relative to {reference} (= 100)."
    note += " Best per column in bold."
    return Table(header, rows, bold, blocks=_blocks(groups), caption=f"Robustness to {title} on {dataset}.",
                 label=f"tab:robustness-{dataset}-{label_suffix or corruption}", note=note)
