"""The interval a table prints beside a mean over seeds, and the n it rests on.

A cell of the main table is one (model, dataset, condition) scored by every seed that ran. Its
printed value is the **mean over seeds** of the seeds' test scores; its interval is the 95%
percentile interval of a **two-level bootstrap**: each resample draws the seeds with
replacement and, for every drawn seed, that seed's test utterances with replacement, scores
the metric on each and averages over the drawn seeds. It therefore covers both the variation
between training seeds and the finite test set, and with one seed it is the utterance
bootstrap alone. ``n`` is reported as ``seeds x test utterances``.

When a cell's predictions are not stored (or the metric cannot be recomputed from them, as
per-class F1), the interval is the Student-t interval of the seed mean (``n >= 2`` seeds) and
with one seed there is none: the table prints ``n = 1`` in its note, never ``± 0.0``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from harness.metrics import METRICS, score_rows
from reports.latex import fmt

N_BOOT = 1000
_CHUNK_ELEMENTS = 4_000_000  # resampled utterances scored at once


@dataclass
class CellStats:
    """A cell's mean over seeds and its 95% interval, in stored units (fractions, MAE as is).

    ``method``: ``"bootstrap"`` (two-level, from predictions), ``"t"`` (seed means), or
    ``"none"`` (one seed, no predictions: no interval).
    """

    mean: float
    ci_low: float
    ci_high: float
    n_seeds: int
    n_utterances: int
    method: str
    std: float = float("nan")

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _predicted(outputs: np.ndarray) -> tuple[np.ndarray, int | None]:
    outputs = np.asarray(outputs)
    if outputs.ndim == 2:
        return outputs.argmax(-1), int(outputs.shape[1])
    return outputs.astype(float), None


def _score_resamples(metric: str, y: np.ndarray, p: np.ndarray, nc: int | None, k: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``k`` utterance-bootstrap scores of one seed's predictions (chunked to bound memory)."""
    m = len(y)
    out, done = [], 0
    step = max(1, _CHUNK_ELEMENTS // max(m, 1))
    while done < k:
        r = min(step, k - done)
        idx = rng.integers(0, m, size=(r, m))
        out.append(score_rows(metric, y[idx], p[idx], nc))
        done += r
    return np.concatenate(out) if out else np.zeros(0)


def two_level_bootstrap(records: Sequence[Mapping[str, Any]], metric: str, n_boot: int = N_BOOT,
                        level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the seed mean of ``metric``: resample seeds, then utterances
    within each drawn seed (see the module doc). ``records``: one prediction record
    (``uids``, ``targets``, ``outputs``) per seed. NaN resamples (e.g. Non0 with no non-zero
    label drawn) are dropped."""
    if not records:
        raise ValueError("two_level_bootstrap: no prediction records")
    if metric not in METRICS:
        raise ValueError(f"two_level_bootstrap: metric {metric!r} cannot be recomputed from predictions; "
                         f"expected one of {sorted(METRICS)}")
    rng = np.random.default_rng(seed)
    s = len(records)
    picks = rng.integers(0, s, size=(n_boot, s))
    values = np.empty((n_boot, s))
    for k, rec in enumerate(records):
        y = np.asarray(rec["targets"])
        p, nc = _predicted(rec["outputs"])
        if METRICS[metric].task == "regression":
            y = y.astype(float)
        slots = np.argwhere(picks == k)
        values[slots[:, 0], slots[:, 1]] = _score_resamples(metric, y, p, nc, len(slots), rng)
    means = values.mean(1)
    means = means[~np.isnan(means)]
    if len(means) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (NaN-free, ``n >= 2``); ``(nan, nan)`` for fewer."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float("nan"), float("nan")
    h = float(sps.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return float(v.mean() - h), float(v.mean() + h)


def cell_stats(values: Sequence[float], metric: str, cell_keys: Sequence[str] | None = None,
               predictions: Callable[[str], Mapping[str, Any] | None] | None = None,
               n_utterances: int = 0, n_boot: int = N_BOOT, seed: int = 0) -> CellStats:
    """Mean over seeds of ``values`` (one stored score per seed; NaN = failed, dropped) with its
    interval: the two-level bootstrap when every seed's predictions are stored (``cell_keys``
    aligned with ``values``), else the t interval (see the module doc)."""
    v = np.asarray(values, dtype=float)
    keep = ~np.isnan(v)
    ok = v[keep]
    if len(ok) == 0:
        return CellStats(float("nan"), float("nan"), float("nan"), 0, n_utterances, "none")
    std = float(ok.std(ddof=1)) if len(ok) > 1 else float("nan")
    records = None
    if predictions is not None and cell_keys is not None and metric in METRICS:
        keys = [k for k, good in zip(cell_keys, keep) if good]
        recs = [predictions(k) for k in keys]
        if recs and all(r is not None and len(r["uids"]) for r in recs):
            records = recs
    if records is not None:
        lo, hi = two_level_bootstrap(records, metric, n_boot=n_boot, seed=seed)
        n_utt = int(round(np.mean([len(r["uids"]) for r in records])))
        return CellStats(float(ok.mean()), lo, hi, len(ok), n_utt, "bootstrap", std)
    lo, hi = t_interval(ok)
    return CellStats(float(ok.mean()), lo, hi, len(ok), n_utterances, "t" if len(ok) > 1 else "none", std)


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


def method_note(methods: Sequence[str]) -> str:
    """What the printed ``±`` means, for the methods used in one table."""
    used = set(methods)
    parts = []
    if "bootstrap" in used:
        parts.append("± half-width of the 95% interval of a two-level bootstrap (seeds, then test utterances)")
    if "t" in used:
        parts.append("± half-width of the 95% Student-t interval over seeds" + (" (cells without stored predictions)"
                                                                               if "bootstrap" in used else ""))
    if "none" in used:
        parts.append("n = 1 seed without stored predictions: no interval")
    return "; ".join(parts) + "." if parts else ""


def pm(stats: CellStats, scale: float, digits: int) -> str:
    """``61.2 ± 1.8`` (half-width of the interval), the bare mean when there is no interval."""
    if np.isnan(stats.mean):
        return "–"
    if np.isnan(stats.ci_low) or np.isnan(stats.ci_high):
        return fmt(stats.mean * scale, digits)
    return f"{fmt(stats.mean * scale, digits)} ± {fmt(stats.half_width * scale, digits)}"
