"""The main results table (clean test scores, every metric of the dataset's set) and the
per-class F1 table, with intervals and n (:mod:`reports.intervals`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.metrics import metric
from harness.store import CLEAN
from reports.aggregate import model_groups
from reports.inference import Estimate
from reports.intervals import N_BOOT, cell_stats, describe_n, method_note, pm
from reports.latex import Table, best_mask

Predictions = Callable[[str], Mapping[str, Any] | None]


def all_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Every row, undefended cells' ``defense`` as ``"none"`` and the metrics of a failed row NaN
    (so that a mean over seeds sees the failure)."""
    d = df.copy()
    d["defense"] = d["defense"].fillna("none")
    metrics = [c for c in d.columns if c.startswith("metric_")]
    d.loc[d["status"] != "ok", metrics] = np.nan
    return d


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Successful rows, undefended cells' ``defense`` as ``"none"``."""
    d = all_rows(df)
    return d[d["status"] == "ok"]


def one_dataset(df: pd.DataFrame, dataset: str | None, who: str) -> tuple[pd.DataFrame, str]:
    names = sorted(df["dataset"].unique())
    if dataset is None:
        if len(names) != 1:
            raise ValueError(f"{who}: the results hold datasets {names}; pass dataset=")
        dataset = names[0]
    elif dataset not in names:
        raise ValueError(f"{who}: dataset {dataset!r} not in the results; available {names}")
    return df[df["dataset"] == dataset], dataset


def check_metrics(df: pd.DataFrame, metrics: Sequence[str], who: str) -> None:
    for m in metrics:
        if f"metric_{m}" not in df.columns:
            raise ValueError(f"{who}: metric {m!r} not in the results; available "
                             f"{sorted(c[7:] for c in df.columns if c.startswith('metric_'))}")
        metric(m)  # unknown names raise KeyError listing the known ones


def clean_stats(df: pd.DataFrame, metrics: Sequence[str], dataset: str | None = None,
                predictions: Predictions | None = None, n_boot: int = N_BOOT) -> dict[tuple[str, str], Estimate]:
    """``(model label, metric) -> Estimate`` of the clean, undefended test cells of one dataset; a
    cell with a failed seed has a NaN mean (:func:`reports.intervals.cell_stats`)."""
    d = all_rows(df)
    d = d[(d["corruption"] == CLEAN) & (d["defense"] == "none")]
    d, dataset = one_dataset(d, dataset, "clean_stats")
    out = {}
    for v, g in d.groupby("variant", sort=True):
        for m in metrics:
            out[v, m] = cell_stats(g[f"metric_{m}"].to_numpy(float), m, list(g["cell_key"]), predictions,
                                   n_utterances=int(g["n_utterances"].max()) if "n_utterances" in g else 0,
                                   n_boot=n_boot)
    return out


def stats_table(stats: Mapping[tuple[str, str], Estimate], metrics: Sequence[str], groups: Sequence[Sequence[str]],
                caption: str, label: str, extra_note: str = "") -> Table:
    """Rows = models in ``groups`` (a rule between groups), columns = ``metrics``; each cell
    ``mean ± half-width``; best mean per column bold, at printed precision."""
    models = [v for g in groups for v in g]
    rows = [[v] + [pm(stats[v, m], metric(m).scale, metric(m).decimals) if (v, m) in stats else "–"
                   for m in metrics] for v in models]
    cols = [best_mask([stats[v, m].estimate * metric(m).scale if (v, m) in stats else np.nan for v in models],
                      metric(m).higher_is_better, metric(m).decimals) for m in metrics]
    bold = [[False] + [cols[j][i] for j in range(len(metrics))] for i in range(len(models))]
    blocks = list(np.cumsum([len(g) for g in groups])[:-1] - 1)
    header = ["Model"] + [header_label(m) for m in metrics]
    cells = [stats[k] for k in stats if k[0] in models and k[1] in metrics]
    n = describe_n([c.n_seeds[0] for c in cells], [c.n_utterances for c in cells])
    arrows = "↑ higher is better, ↓ lower is better"
    note = f"Mean over seeds, {n}; {method_note(cells)} Best mean in bold; {arrows}."
    return Table(header, rows, bold, blocks=[int(b) for b in blocks], caption=caption, label=label,
                 note=(note + " " + extra_note).strip())


def header_label(name: str) -> str:
    """A metric's column header on two lines: display name, then unit and direction."""
    m = metric(name)
    unit = f"({m.unit}) " if m.unit else ""
    return f"{m.display}\n{unit}{m.arrow}"


def main_results_table(df: pd.DataFrame, metrics: Sequence[str], dataset: str | None = None,
                       predictions: Predictions | None = None, full_model: str | None = None,
                       ablated: Sequence[str] = (), n_boot: int = N_BOOT) -> Table:
    """Clean test scores on one dataset: one row per model (the full model and baselines, then
    the ablation variants), one column per metric of ``metrics``, ``mean ± half-width of the
    95% interval`` over seeds and test utterances. ``df`` is ``ResultStore.dataframe()``."""
    check_metrics(df, metrics, "main_results_table")
    stats = clean_stats(df, metrics, dataset, predictions, n_boot)
    if not stats:
        raise ValueError(f"main_results_table: no successful clean rows for dataset {dataset!r}")
    d, dataset = one_dataset(df, dataset, "main_results_table")
    groups = model_groups(sorted({v for v, _ in stats}), full_model, ablated)
    return stats_table(stats, metrics, groups, caption=f"Clean test results on {dataset}.",
                       label=f"tab:main-{dataset}")


def per_class_table(df: pd.DataFrame, class_metrics: Sequence[str], dataset: str | None = None,
                    full_model: str | None = None, ablated: Sequence[str] = ()) -> Table:
    """Per-class F1 (``f1_<class>``) on the clean test set: mean over seeds with the t interval
    (per-class F1 is not resampled; one seed prints the bare mean and says n = 1)."""
    check_metrics(df, class_metrics, "per_class_table")
    stats = clean_stats(df, class_metrics, dataset)
    d, dataset = one_dataset(df, dataset, "per_class_table")
    groups = model_groups(sorted({v for v, _ in stats}), full_model, ablated)
    return stats_table(stats, class_metrics, groups, caption=f"Per-class F1 on the clean test set of {dataset}.",
                       label=f"tab:per-class-{dataset}")
