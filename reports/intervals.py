"""The interval a table prints beside a mean over seeds, and the n it rests on.

A cell of the main table is one (model, dataset, condition) scored by every seed that ran. Its
printed value is the **mean over seeds** of the seeds' test scores; its interval is
:func:`reports.inference.cell_estimate`'s: the training seeds' scatter and the variance that the
shared test set adds (resampled by dialogue when the store has the dialogue ids), with a t
quantile whose degrees of freedom follow from the number of seeds. ``n`` is reported as
``seeds x test utterances``.

Without stored predictions (or for a metric that cannot be recomputed from them, as per-class
F1) the interval is the t interval over seeds alone, and with one seed there is none; the
table's note names the method used. A failed seed makes its cell's mean NaN (printed ``–``):
a model is never scored on the seeds that happened to succeed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from harness.metrics import METRICS
from reports.inference import (
    CROSSED,
    N_BOOT,
    NO_INTERVAL,
    SEEDS_ONLY,
    TEST_ONLY,
    Estimate,
    cell_estimate,
    difference_estimate,
)
from reports.latex import fmt

__all__ = ["N_BOOT", "cell_stats", "describe_n", "difference_stats", "method_note", "pm"]


def cell_stats(values: Sequence[float], metric: str, cell_keys: Sequence[str] | None = None,
               predictions: Callable[[str], Mapping[str, Any] | None] | None = None,
               n_utterances: int = 0, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Mean over seeds of ``values`` (one stored score per seed; NaN = a failed seed, which makes
    the cell NaN) with its interval, from the seeds' stored predictions when every one of them
    has them (``cell_keys`` aligned with ``values``), else from the values alone."""
    v = np.asarray(values, dtype=float)
    records = None
    if predictions is not None and cell_keys is not None and metric in METRICS and not np.isnan(v).any():
        recs = [predictions(k) for k in cell_keys]
        if recs and all(r is not None and len(r["uids"]) for r in recs):
            records = recs
    est = cell_estimate(v, metric, records, n_boot=n_boot, seed=seed, n_utterances=n_utterances)
    est.n_failed = int(np.isnan(v).sum())
    return est


def difference_stats(values_a: Sequence[float], keys_a: Sequence[str], values_b: Sequence[float],
                     keys_b: Sequence[str], metric: str,
                     predictions: Callable[[str], Mapping[str, Any] | None] | None = None,
                     n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """``mean(A) - mean(B)`` over the seeds each model ran (any failed seed: NaN) with its interval
    and p (:func:`reports.inference.difference_estimate`), from the stored predictions of every
    seed of both when they exist, else from the stored scores alone."""
    a, b = np.asarray(values_a, dtype=float), np.asarray(values_b, dtype=float)
    recs_a = recs_b = None
    if predictions is not None and metric in METRICS and not (np.isnan(a).any() or np.isnan(b).any()):
        ra, rb = [predictions(k) for k in keys_a], [predictions(k) for k in keys_b]
        if all(r is not None and len(r["uids"]) for r in ra + rb):
            recs_a, recs_b = ra, rb
    est = difference_estimate(a, b, metric, recs_a, recs_b, n_boot=n_boot, seed=seed)
    est.n_failed = int(np.isnan(a).sum() + np.isnan(b).sum())
    return est


def describe_n(n_seeds: Sequence[int], n_utterances: Sequence[int]) -> str:
    """``n = 3 seeds × 686 test utterances`` (ranges when cells differ; ``n = 1 seed`` for one)."""
    seeds = sorted({int(x) for x in n_seeds if x})
    utts = sorted({int(x) for x in n_utterances if x})
    s = "?" if not seeds else str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    text = f"n = {s} seed{'s' if seeds != [1] else ''}"
    if utts:
        u = str(utts[0]) if len(utts) == 1 else f"{utts[0]}–{utts[-1]}"
        text += f" × {u} test utterances"
    return text


_METHOD_NOTES = {
    CROSSED: "± half-width of the 95% interval over training seeds and the shared test set (a t quantile; the "
             "test set resampled by {unit})",
    SEEDS_ONLY: "± half-width of the 95% Student-t interval over seeds, without the test-set variance (no stored "
                "predictions)",
    TEST_ONLY: "one seed: ± half-width of the test-set interval alone (the training variance cannot be estimated)",
    NO_INTERVAL: "one seed without stored predictions: no interval",
}


def method_note(cells: Sequence[Estimate]) -> str:
    """What the printed ``±`` means, for the methods used by ``cells``, and how many failed."""
    used = list(dict.fromkeys(c.method for c in cells if not np.isnan(c.estimate)))
    units = sorted({c.resampled for c in cells if c.method == CROSSED})
    parts = [_METHOD_NOTES[m].format(unit=" or ".join(units) or "utterances") for m in used]
    failed = [c for c in cells if c.n_failed]
    if failed:
        parts.append(f"– a cell with a failed seed ({len(failed)} cell{'s' if len(failed) > 1 else ''}): no mean is "
                     "printed for it")
    return "; ".join(parts) + "." if parts else ""


def pm(stats: Estimate, scale: float, digits: int) -> str:
    """``61.2 ± 1.8`` (half-width of the interval), the bare mean when there is no interval."""
    if np.isnan(stats.estimate):
        return "–"
    if np.isnan(stats.ci_low) or np.isnan(stats.ci_high):
        return fmt(stats.estimate * scale, digits)
    return f"{fmt(stats.estimate * scale, digits)} ± {fmt(stats.half_width * scale, digits)}"
