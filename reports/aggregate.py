"""Turn stored result rows into per-(model, corruption, severity) summaries across seeds."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.store import CLEAN
from reports.intervals import N_BOOT, cell_stats

Predictions = Callable[[str], Mapping[str, Any] | None]


def _first(g: pd.DataFrame, col: str) -> str:
    """The first stored value of ``col`` in ``g`` ("" when none)."""
    if col not in g.columns or not g[col].notna().any():
        return ""
    return str(g[col].dropna().iloc[0])


def corruption_titles(rows: pd.DataFrame, fallback: Mapping[str, str] | None = None) -> dict[str, str]:
    """``corruption label -> title in words`` for every corruption of result ``rows`` (a
    ``ResultStore.dataframe()``), as the rows store it (``title``, like ``parameter``). A label
    whose rows hold no title (a store written before titles were stored) takes ``fallback``'s,
    else the label itself."""
    fallback = fallback or {}
    out: dict[str, str] = {}
    for label, g in rows[rows["corruption"] != CLEAN].groupby("corruption", sort=True):
        out[str(label)] = _first(g, "title") or fallback.get(str(label), str(label))
    return out


def curves(df: pd.DataFrame, metric: str, predictions: Predictions | None = None, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Mean over seeds of ``metric`` for every curve point, with its 95% interval.

    The clean row (severity 0) is repeated under every corruption so that each curve starts at
    the model's clean score. The interval is :func:`reports.intervals.cell_stats`'s: training
    seeds and the shared test set when ``predictions`` (``ResultStore.predictions``) is given,
    the seeds alone otherwise. A failed seed is counted in ``failed`` and makes the point's
    mean NaN: a curve never rests on the seeds that happened to succeed.
    """
    col = f"metric_{metric}"
    if col not in df.columns:
        raise ValueError(f"metric {metric!r} is not in the stored results; available: "
                         f"{sorted(c[7:] for c in df.columns if c.startswith('metric_'))}")
    df = df.copy()
    df.loc[df["status"] != "ok", col] = np.nan
    clean = df[df["corruption"] == CLEAN]
    corrs = sorted(set(df["corruption"]) - {CLEAN})
    parts = [df[df["corruption"] != CLEAN]]
    for c in corrs or [CLEAN]:
        parts.append(clean.assign(corruption=c))
    df = pd.concat(parts, ignore_index=True)
    rows = []
    keys = ["dataset", "variant", "corruption", "defense", "severity"]
    df["defense"] = df["defense"].fillna("none")
    for key, g in df.groupby(keys, sort=True):
        g = g.sort_values("seed")
        values = g[col].to_numpy(dtype=float)
        est = cell_stats(values, metric, list(g["cell_key"]), predictions, n_boot=n_boot)
        rows.append({**dict(zip(keys, key)), "mean": est.estimate,
                     "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0, "ci_low": est.ci_low,
                     "ci_high": est.ci_high, "n_seeds": int((~np.isnan(values)).sum()),
                     "failed": int((g["status"] != "ok").sum()),
                     "method": est.method, "parameter": _first(g, "parameter"),
                     "parameter_value": _first(g, "parameter_value")})
    return pd.DataFrame(rows)


def model_groups(labels: Sequence[str], full_model: str | None = None,
                 ablated: Sequence[str] = ()) -> list[list[str]]:
    """Row order of tables and heatmaps: ``[[full model, baselines...], [ablation variants...]]``
    (each group sorted by name, the full model first; empty groups left out)."""
    labels = list(dict.fromkeys(labels))
    variants = [x for x in sorted(labels) if x in set(ablated) and x != full_model]
    main = sorted(x for x in labels if x not in set(variants) and x != full_model)
    if full_model in labels:
        main.insert(0, full_model)
    return [g for g in (main, variants) if g]
