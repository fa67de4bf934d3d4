"""Robustness summaries from curve means over severities 0..5 (definitions: docs/METRICS.md §3).

Input is the output of :func:`reports.aggregate.curves` (columns ``dataset, variant,
corruption, defense, severity, mean, ...``). Every summary is computed on the metric itself, in
its stored units, for either direction; nothing is mapped first. With ``d = +1`` for a
higher-is-better metric and ``d = -1`` for a lower-is-better one (``mae``), and the error
``E_s = 1 - m_s`` (higher is better; every such metric's best value is 1) or ``E_s = m_s``
(lower is better; best value 0):

Per (dataset, model, corruption) -- :func:`robustness_summary`:

* ``m0`` -- the clean score; ``aurc`` -- trapezoid area under ``m_s`` over the severities,
  divided by the severity span, so a flat curve scores ``m0`` (for MAE, lower is better).
* ``rel_drop_<s>`` -- ``d * (m0 - m_s) / |m0|``: the share of clean performance lost
  (higher is better) or the relative growth of the error (lower is better); positive is worse
  in both cases.
* ``relative_robustness`` -- ``d * aurc`` min-max normalised across the models of one
  (dataset, corruption): 1 is the most robust; 1.0 for every model when they tie.
* ``effective_robustness_raw`` -- ``d * sum_s [(m_s - m0) - (r_s - r0)]`` with ``r`` the reference
  model's curve (positive: more robust than a reference with the same clean score; a flat curve
  against a flat reference gives exactly 0);
  ``effective_robustness`` is its min-max normalisation across models.
* ``ce`` -- ``sum_{s>=1} E_s / sum_{s>=1} E^ref_s``; ``relative_ce`` uses ``E_s - E_0`` in
  numerator and denominator (ImageNet-C sums over severities 1..5). Lower is better.

Per (dataset, model) -- :func:`mce_table`: ``mce`` / ``relative_mce`` = mean of ``ce`` /
``relative_ce`` over corruptions.

A failed point is NaN and stays NaN through every mean (:func:`strict_mean`): a curve point
with a failed seed, a summary of a curve with a NaN point, an mCE with a NaN corruption. Scores
that tie within :data:`TIE_TOLERANCE` get the same normalised value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from harness.metrics import metric as metric_info

KEYS = ["dataset", "variant", "corruption"]


def aurc(values: Sequence[float], severities: Sequence[float] | None = None) -> float:
    """Trapezoid area under ``values`` (``m_s``, in the metric's units) over ``severities`` (default
    0..len-1), divided by the severity span. NaN if any value is NaN; one point gives itself."""
    v = np.asarray(values, dtype=float)
    x = np.arange(len(v), dtype=float) if severities is None else np.asarray(severities, dtype=float)
    if v.shape != x.shape or v.ndim != 1 or len(v) == 0:
        raise ValueError(f"aurc: values {v.shape} and severities {x.shape} must be equal-length, non-empty 1-D")
    if np.any(np.diff(x) <= 0):
        raise ValueError(f"aurc: severities must be strictly increasing, got {x.tolist()}")
    if np.isnan(v).any():
        return float("nan")
    if len(v) == 1:
        return float(v[0])
    return float(np.trapezoid(v, x) / (x[-1] - x[0]))


def rel_drop(m0: float, ms: float, higher_is_better: bool = True) -> float:
    """``d * (m0 - ms) / |m0|`` with ``d = +1`` (higher is better: the share of clean performance
    lost) or ``-1`` (lower is better: the relative growth of the error); positive is worse.
    NaN when ``m0`` is 0 or NaN."""
    if not m0 or np.isnan(m0):
        return float("nan")
    d = 1.0 if higher_is_better else -1.0
    return float(d * (m0 - ms) / abs(m0))


def error(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """The error ``E`` of metric values: ``1 - m`` (higher is better, best value 1) or ``m``
    itself (lower is better, best value 0)."""
    v = np.asarray(values, dtype=float)
    return 1.0 - v if higher_is_better else v


TIE_TOLERANCE = 1e-9
"""Scores whose spread is at most this (in the metric's stored units: fractions, MAE as is) are
a tie for :func:`minmax`. Float rounding of seed means and sums leaves differences of about
1e-16; no real difference between models is that small."""


def minmax(values: Sequence[float]) -> np.ndarray:
    """Min-max normalise to [0, 1] ignoring NaN (a NaN stays NaN). Values whose spread is at most
    :data:`TIE_TOLERANCE` tie, and every one of them maps to 1.0."""
    v = np.asarray(values, dtype=float)
    ok = ~np.isnan(v)
    if not ok.any():
        return v
    lo, hi = v[ok].min(), v[ok].max()
    if hi - lo <= TIE_TOLERANCE:
        return np.where(ok, 1.0, np.nan)
    return (v - lo) / (hi - lo)


def effective_robustness_raw(values: np.ndarray, reference: np.ndarray, higher_is_better: bool) -> float:
    """``d * sum_s [(m_s - m_0) - (r_s - r_0)]``: each curve's change from its own clean point,
    taken before the curves are combined, so that a flat curve contributes exactly 0 (no rounding
    residue from adding and subtracting clean scores). NaN if any point is NaN."""
    d = 1.0 if higher_is_better else -1.0
    m, r = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    return float(d * np.sum((m - m[0]) - (r - r[0])))


def _curve_table(summary: pd.DataFrame, metric: str, defense: str) -> pd.DataFrame:
    """Wide table: index (dataset, variant, corruption), columns severities, values m_s."""
    need = set(KEYS) | {"defense", "severity", "mean"}
    missing = need - set(summary.columns)
    if missing:
        raise ValueError(f"robustness: summary lacks columns {sorted(missing)}; pass reports.aggregate.curves(...) output")
    data = summary[summary["defense"].fillna("none") == defense]
    if data.empty:
        raise ValueError(f"robustness: no curve rows with defense {defense!r}; available "
                         f"{sorted(summary['defense'].fillna('none').unique())}")
    wide = data.pivot_table(index=KEYS, columns="severity", values="mean", aggfunc="first", dropna=False)
    return wide.sort_index(axis=1)


def robustness_summary(summary: pd.DataFrame, metric: str, reference: str | None = None,
                       defense: str = "none") -> pd.DataFrame:
    """One row per (dataset, variant, corruption) with ``m0``, ``aurc``, ``rel_drop_<s>`` for
    every severity s >= 1, ``worst_severity`` (the highest s), ``relative_robustness`` and, when ``reference`` (a variant label) is
    given, ``effective_robustness_raw``, ``effective_robustness``, ``ce`` and ``relative_ce``.
    Values are in ``metric``'s stored units (fractions, not percent; MAE and Corr as they are).
    The frame's ``attrs`` record the metric and its direction."""
    higher = metric_info(metric).higher_is_better
    d = 1.0 if higher else -1.0
    wide = _curve_table(summary, metric, defense)
    sev = [int(s) for s in wide.columns]
    if 0 not in sev:
        raise ValueError(f"robustness: curves need severity 0 (clean); got severities {sev}")
    if reference is not None and reference not in wide.index.get_level_values("variant"):
        raise ValueError(f"reference model {reference!r} is not among the variants "
                         f"{sorted(set(wide.index.get_level_values('variant')))}")
    rows = []
    for (dataset, variant, corr), m in wide.iterrows():
        vals = m.to_numpy(dtype=float)
        row = {"dataset": dataset, "variant": variant, "corruption": corr, "m0": vals[0],
               "aurc": aurc(vals, sev), "worst_severity": max(sev) if len(sev) > 1 else None}
        for s, v in zip(sev[1:], vals[1:]):
            row[f"rel_drop_{s}"] = rel_drop(vals[0], v, higher)
        if reference is not None:
            key = (dataset, reference, corr)
            if key in wide.index:
                r = wide.loc[key].to_numpy(dtype=float)
                row["effective_robustness_raw"] = effective_robustness_raw(vals, r, higher)
                e, er = error(vals, higher), error(r, higher)
                row["ce"] = float(e[1:].sum() / er[1:].sum()) if er[1:].sum() > 0 else float("nan")
                rel_den = (er[1:] - er[0]).sum()
                row["relative_ce"] = float((e[1:] - e[0]).sum() / rel_den) if rel_den != 0 else float("nan")
            else:
                row["effective_robustness_raw"] = row["ce"] = row["relative_ce"] = float("nan")
        rows.append(row)
    out = pd.DataFrame(rows)
    group = out.groupby(["dataset", "corruption"], sort=False)
    out["relative_robustness"] = group["aurc"].transform(lambda s: minmax(d * s.to_numpy()))
    if reference is not None:
        out["effective_robustness"] = group["effective_robustness_raw"].transform(lambda s: minmax(s.to_numpy()))
    out = out.sort_values(KEYS).reset_index(drop=True)
    out.attrs.update(metric=metric, higher_is_better=higher)
    return out


def strict_mean(values: Sequence[float] | pd.Series) -> float:
    """The mean, NaN when any member is NaN: a failed cell, seed or corruption makes the whole
    mean undefined, so a model can never score better by failing part of it."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()) if len(v) and not np.isnan(v).any() else float("nan")


def mce_table(rob: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, variant): ``mce`` and ``relative_mce`` (means of ``ce``/``relative_ce``
    over corruptions), mean ``aurc``, the number of corruptions and ``n_failed_corruptions``
    (those whose ``ce`` is NaN). Every mean is :func:`strict_mean`: NaN when any corruption's
    value is NaN."""
    if "ce" not in rob.columns:
        raise ValueError("mce_table: the summary has no 'ce' column; call robustness_summary with reference=...")
    g = rob.groupby(["dataset", "variant"], sort=True)
    return g.agg(mce=("ce", strict_mean), relative_mce=("relative_ce", strict_mean), mean_aurc=("aurc", strict_mean),
                 n_corruptions=("corruption", "nunique"),
                 n_failed_corruptions=("ce", lambda s: int(s.isna().sum()))).reset_index()
