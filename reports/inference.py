"""Intervals and tests for scores averaged over training seeds on one shared test set.

A benchmark cell is scored by K trainings (seeds) of one model, every one of them on the **same**
test utterances: the design is crossed, not nested. Its printed score is the mean over seeds.
That mean varies for two reasons, and an interval must carry both:

* **training** -- another seed trains another model. The seeds' scores scatter around the
  model's mean; their sample variance ``s²`` (ddof 1) estimates that scatter (the part of the
  test-set noise that differs between seeds included), and ``s² / K`` is its share of the
  variance of the mean.
* **the test set** -- another draw of test utterances from the same population moves every
  seed's score the same way. That shared part does not shrink with more seeds. It is estimated
  by resampling the test set (dialogues when their ids are stored, else utterances) **once for
  all seeds** and taking the mean covariance between the scores of two different seeds over the
  resamples, ``V_test``. (A seed's covariance with itself also holds its own test noise, which
  ``s²`` already counts, so only pairs of different seeds are used.)

The variance of the mean is ``V = s² / K + V_test``, and the 95% interval is
``mean ± t(df) · sqrt(V)`` with Welch–Satterthwaite degrees of freedom in which the seed
variance is taken at an upper confidence bound (:func:`interval_df`): few seeds and a large
training scatter give a wide t quantile, a dominant test-set share gives the normal one.

A **difference** between models A and B (K_A and K_B seeds, trained independently) has
``V = s_A² / K_A + s_B² / K_B + V_test(A - B)`` with ``V_test(A - B)`` from the same resamples
(``V_test(A) + V_test(B) - 2 · cov(A, B)``: utterances that are hard for both cancel), and
``df`` as above over the two seed terms. Its two-sided p is the t test of 0.

With one seed, the training scatter cannot be estimated: the interval is the test-set part
alone (``method`` says so, and tables print it). Without stored predictions, the test-set part
cannot be estimated: the interval is the t interval over seeds alone (again named).

``benchmarks/coverage_study.py`` simulates models with known true scores, seed noise and a
shared test set, and measures how often these intervals cover the truth (docs/METRICS.md quotes
its table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from harness.metrics import METRICS, score_rows

N_BOOT = 1000
LEVEL = 0.95
POWER = 0.8
_CHUNK_ELEMENTS = 4_000_000  # resampled utterances scored at once

CROSSED = "seeds + shared test set (t)"
SEEDS_ONLY = "t over seeds (test-set variance not included: no stored predictions)"
TEST_ONLY = "test-set bootstrap (1 seed: training variance not included)"
NO_INTERVAL = "none (1 seed, no stored predictions)"
METHODS = (CROSSED, SEEDS_ONLY, TEST_ONLY, NO_INTERVAL)


@dataclass
class Estimate:
    """A mean over seeds, or a difference of two such means, with its interval.

    Units are the metric's stored units (fractions; MAE as is). ``se`` is the standard error,
    ``df`` the t degrees of freedom (``inf`` for a normal quantile), ``seed_var`` the training
    share ``s²/K`` (summed over both models for a difference) and ``test_var`` the shared
    test-set share of ``se²``. ``n_seeds`` is ``(K,)`` for a cell and ``(K_A, K_B)`` for a
    difference; ``n_utterances`` the test utterances each seed was scored on. ``p`` is the
    two-sided p-value of 0 (differences only; NaN for a cell). ``resampled`` names the test-set
    resampling unit (``dialogues`` or ``utterances``).
    """

    estimate: float
    ci_low: float
    ci_high: float
    se: float
    df: float
    method: str
    n_seeds: tuple[int, ...]
    n_utterances: int
    seed_var: float = float("nan")
    test_var: float = float("nan")
    p: float = float("nan")
    level: float = LEVEL
    resampled: str = "utterances"
    seed_var_per_seed: tuple[float, ...] = ()  # s² of each model, behind seed_var (for seeds_to_detect)
    n_failed: int = 0  # seeds that failed (the estimate is then NaN)

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2

    @property
    def shown(self) -> bool:
        """Whether the interval excludes 0 (a difference is shown at this level)."""
        return bool(self.ci_low > 0 or self.ci_high < 0)

    def detectable(self, power: float = POWER) -> float:
        """The smallest true difference this design detects with probability ``power`` at its
        level (two-sided): ``(t(1 - α/2, df) + t(power, df)) · se``. NaN without an interval."""
        return detectable_effect(self.se, self.df, self.level, power)

    def seeds_to_detect(self, effect: float | None = None, power: float = POWER, max_seeds: int = 1000) -> int | None:
        """Seeds per model at which a true difference of ``effect`` (default: the observed one)
        is detected with probability ``power``, assuming the per-seed scatter and the test-set
        variance measured here. ``None`` when the test set alone keeps it out of reach (more
        seeds cannot help: a larger test set can) or when it cannot be estimated."""
        effect = abs(self.estimate if effect is None else effect)
        if len(self.n_seeds) != 2 or min(self.n_seeds) < 2 or not np.isfinite(self.se) or effect == 0:
            return None
        per_seed = self.seed_var_per_seed
        test_var = self.test_var if np.isfinite(self.test_var) else 0.0  # SEEDS_ONLY: not estimated
        for k in range(2, max_seeds + 1):
            seed_part = per_seed[0] / k + per_seed[1] / k
            v = seed_part + test_var
            df = interval_df(test_var, [(per_seed[0] / k, k), (per_seed[1] / k, k)])
            if detectable_effect(np.sqrt(v), df, self.level, power) <= effect:
                return k
        return None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["n_seeds"] = list(self.n_seeds)
        out["seed_var_per_seed"] = list(self.seed_var_per_seed)
        out["detectable_80"] = self.detectable()
        return out


def detectable_effect(se: float, df: float, level: float = LEVEL, power: float = POWER) -> float:
    """``(t(1 - α/2, df) + t(power, df)) · se``: the minimum detectable effect of a two-sided
    t test at ``level`` with probability ``power``; NaN when ``se`` or ``df`` is not finite and positive."""
    if not (np.isfinite(se) and se > 0 and df > 0):
        return float("nan")
    return float((sps.t.ppf(0.5 + level / 2, df) + sps.t.ppf(power, df)) * se)


DF_QUANTILE = 1 / 3
"""The seed variances enter the degrees of freedom at their upper confidence bound
``s² (K - 1) / χ²_{1/3}(K - 1)`` (see :func:`interval_df`)."""


def welch_df(total_var: float, parts: Sequence[tuple[float, int]]) -> float:
    """Welch–Satterthwaite degrees of freedom of ``total_var`` whose estimated parts are
    ``(variance share, seeds)``; the rest of ``total_var`` counts as known (infinite df)."""
    den = sum(v * v / (k - 1) for v, k in parts if k > 1)
    return float(total_var * total_var / den) if den > 0 else float("inf")


def interval_df(test_var: float, parts: Sequence[tuple[float, int]]) -> float:
    """The degrees of freedom of an interval whose variance is ``sum(parts) + test_var``:
    Welch–Satterthwaite's, with each seed share ``(s²/K, K)`` taken at the upper bound
    ``s² (K - 1) / χ²_{DF_QUANTILE}(K - 1)`` before it enters the formula.

    Plain Welch–Satterthwaite plugs the sample variance in: when three seeds happen to agree,
    ``s²`` is small, the test-set share looks dominant, the df look large and the interval is too
    narrow just when it is too narrow already (the coverage study measured 0.925 at 3 seeds).
    Computing the df from a plausible upper value of the seed variance corrects that, and
    the variance of the interval itself stays the unbiased ``s²/K + V_test``. ``DF_QUANTILE``
    is calibrated by ``benchmarks/coverage_study.py`` (docs/METRICS.md quotes the table)."""
    upper = [(v * (k - 1) / sps.chi2.ppf(DF_QUANTILE, k - 1), k) for v, k in parts if k > 1]
    total = sum(v for v, _ in upper) + (test_var if np.isfinite(test_var) else 0.0)
    return welch_df(total, upper)


# ------------------------------------------------------------------------------ prediction records

def _predicted(outputs: np.ndarray) -> np.ndarray:
    outputs = np.asarray(outputs)
    return outputs.argmax(-1) if outputs.ndim == 2 else outputs.astype(float)


def _n_classes(outputs: np.ndarray) -> int | None:
    outputs = np.asarray(outputs)
    return int(outputs.shape[1]) if outputs.ndim == 2 else None


def aligned_predictions(records: Sequence[Mapping[str, Any]], metric: str
                        ) -> tuple[np.ndarray, np.ndarray, int | None, np.ndarray | None]:
    """Targets ``[M]``, predictions ``[K, M]`` (classes or scores), the class count and the
    dialogue index of every utterance (``[M]``, ``None`` when a record stores no dialogue ids),
    all in the first record's utterance order.

    Every record (``{"uids", "targets", "outputs"}``, optionally ``"groups"``) must score the
    same utterances with the same targets: a ``ValueError`` names the first difference.
    """
    if not records:
        raise ValueError("no prediction records")
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} cannot be recomputed from predictions; expected one of {sorted(METRICS)}")
    first = records[0]
    uids = list(first["uids"])
    order = {u: i for i, u in enumerate(uids)}
    if len(order) != len(uids):
        raise ValueError("a prediction record holds duplicate uids; each utterance must be predicted once")
    y = np.asarray(first["targets"])
    preds, nc = [], _n_classes(first["outputs"])
    groups = None if first.get("groups") is None else list(first["groups"])
    for k, rec in enumerate(records):
        ruids = list(rec["uids"])
        if len(ruids) != len(uids) or set(ruids) != set(order):
            only = sorted(set(ruids) ^ set(order))
            raise ValueError(f"prediction record {k} covers other utterances than record 0 (e.g. {only[:3]}); "
                             "every seed must be scored on the same test set")
        where = np.asarray([order[u] for u in ruids])
        inv = np.empty_like(where)
        inv[where] = np.arange(len(where))
        targets = np.asarray(rec["targets"])[inv]
        if not np.allclose(targets.astype(float), y.astype(float)):
            bad = int(np.argmax(~np.isclose(targets.astype(float), y.astype(float))))
            raise ValueError(f"prediction record {k} disagrees with record 0 on the target of {uids[bad]!r}")
        if _n_classes(rec["outputs"]) != nc:
            raise ValueError(f"prediction record {k} has outputs of shape {np.asarray(rec['outputs']).shape}; "
                             f"record 0 has {np.asarray(first['outputs']).shape}")
        preds.append(_predicted(np.asarray(rec["outputs"])[inv]))
        if groups is not None and rec.get("groups") is None:
            groups = None
    if METRICS[metric].task == "regression":
        if nc is not None:
            raise ValueError(f"metric {metric!r} scores regression outputs [M]; the predictions are logits [M, C]")
        y = y.astype(float)
    elif nc is None:
        raise ValueError(f"metric {metric!r} scores classification logits [M, C]; the predictions are scores [M]")
    group_index = None
    if groups is not None:
        _, group_index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    return y, np.stack(preds), nc, group_index


def _row_bincount(draws: np.ndarray, size: int) -> np.ndarray:
    """``[R, size]``: how often each value in ``0..size-1`` occurs in each row of ``draws [R, N]``."""
    flat = (draws + size * np.arange(len(draws))[:, None]).ravel()
    return np.bincount(flat, minlength=size * len(draws)).reshape(len(draws), size)


def resample_counts(n: int, groups: np.ndarray | None, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``[n_boot, n]``: how many times each of ``n`` test utterances occurs in each of ``n_boot``
    bootstrap resamples: whole dialogues drawn with replacement when ``groups`` (dialogue index
    per utterance) is given, else utterances. A metric of a resample depends only on these
    multiplicities."""
    if groups is None:
        return _row_bincount(rng.integers(0, n, size=(n_boot, n)), n)
    n_groups = int(groups.max()) + 1
    picks = rng.integers(0, n_groups, size=(n_boot, n_groups))
    return _row_bincount(picks, n_groups)[:, groups]


def _confusion_f1(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class F1 (zero_division 0) and support from confusion counts ``[..., C, C]`` (rows:
    true class, columns: predicted class), as :mod:`harness.metrics` defines them."""
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    support, predicted = conf.sum(-1), conf.sum(-2)
    denom = support + predicted
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0), support


def _confusion_acc(conf: np.ndarray) -> np.ndarray:
    return np.diagonal(conf, axis1=-2, axis2=-1).sum(-1) / conf.sum((-2, -1))


def _confusion_wf1(conf: np.ndarray) -> np.ndarray:
    f1, support = _confusion_f1(conf)
    return (f1 * support).sum(-1) / conf.sum((-2, -1))


def _confusion_mf1(conf: np.ndarray) -> np.ndarray:
    return _confusion_f1(conf)[0].mean(-1)


# Metrics that are functions of the confusion counts: a resample's score follows from its
# multiplicities by one matrix product instead of scoring the resampled utterances one by one.
_FROM_CONFUSION = {"acc": _confusion_acc, "wf1": _confusion_wf1, "mf1": _confusion_mf1}


def resampled_scores(metric: str, y: np.ndarray, preds: np.ndarray, nc: int | None,
                     counts: np.ndarray) -> np.ndarray:
    """``[R, K]``: the metric of every seed's predictions (``preds [K, M]``) on every resample,
    each given by its utterances' multiplicities (``counts [R, M]``, :func:`resample_counts`)."""
    out = np.empty((len(counts), len(preds)))
    if not len(counts):
        return out
    if metric in _FROM_CONFUSION and nc is not None and len(y) and 0 <= y.min() and y.max() < nc:
        weights = counts.astype(np.float64)
        for k, p in enumerate(preds):
            onehot = np.zeros((len(y), nc * nc))
            onehot[np.arange(len(y)), np.asarray(y, dtype=np.int64) * nc + p] = 1.0
            out[:, k] = _FROM_CONFUSION[metric]((weights @ onehot).reshape(len(counts), nc, nc))
        return out
    sizes = counts.sum(1)
    positions = np.arange(counts.shape[1])
    if (sizes == sizes[0]).all():  # equal sizes: score a block of resamples at once
        step = max(1, _CHUNK_ELEMENTS // max(int(sizes[0]), 1))
        for start in range(0, len(counts), step):
            block = np.stack([np.repeat(positions, c) for c in counts[start:start + step]])
            for k, p in enumerate(preds):
                out[start:start + step, k] = score_rows(metric, y[block], p[block], nc)
        return out
    for r, c in enumerate(counts):  # dialogues of different lengths: one resample at a time
        ix = np.repeat(positions, c)
        out[r] = score_rows(metric, np.broadcast_to(y[ix], (len(preds), len(ix))), preds[:, ix], nc)
    return out


def _mean_cross_cov(a: np.ndarray, b: np.ndarray, same: bool) -> float:
    """Mean covariance over resamples between a column of ``a [R, K]`` and a column of
    ``b [R, J]``; with ``same`` (``a is b``) over pairs of different columns only. NaN
    resamples are dropped."""
    ok = ~(np.isnan(a).any(1) | np.isnan(b).any(1))
    a, b = a[ok], b[ok]
    if len(a) < 2:
        return float("nan")
    ac, bc = a - a.mean(0), b - b.mean(0)
    cov = ac.T @ bc / (len(a) - 1)  # [K, J]
    if same:
        k = cov.shape[0]
        return float((cov.sum() - np.trace(cov)) / (k * (k - 1))) if k > 1 else float("nan")
    return float(cov.mean())


def _t_interval(center: float, v: float, df: float, level: float) -> tuple[float, float]:
    if not (np.isfinite(v) and v >= 0):
        return float("nan"), float("nan")
    h = float(sps.t.ppf(0.5 + level / 2, df) * np.sqrt(v)) if df > 0 else float("nan")
    return center - h, center + h


# ------------------------------------------------------------------------------ cells and differences

def cell_estimate(values: Sequence[float], metric: str, records: Sequence[Mapping[str, Any]] | None = None,
                  n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0, n_utterances: int = 0) -> Estimate:
    """The mean over seeds of ``values`` (the stored per-seed scores) with its interval.

    ``records``: the seeds' prediction records in the same order, when stored; they give the
    test-set share (see the module doc). A NaN value (a failed seed) makes the whole cell NaN:
    a model never scores better by failing part of a cell.
    """
    v = np.asarray(values, dtype=float)
    k = len(v)
    if k == 0 or np.isnan(v).any():
        return Estimate(float("nan"), float("nan"), float("nan"), float("nan"), float("nan"), NO_INTERVAL,
                        (k,), n_utterances, level=level)
    mean = float(v.mean())
    s2 = float(v.var(ddof=1)) if k > 1 else float("nan")
    if records is None:
        if k < 2:
            return Estimate(mean, float("nan"), float("nan"), float("nan"), float("nan"), NO_INTERVAL, (1,),
                            n_utterances, level=level)
        seed_part = s2 / k
        df = interval_df(0.0, [(seed_part, k)])
        lo, hi = _t_interval(mean, seed_part, df, level)
        return Estimate(mean, lo, hi, float(np.sqrt(seed_part)), df, SEEDS_ONLY, (k,), n_utterances,
                        seed_var=seed_part, level=level, seed_var_per_seed=(s2,))
    if len(records) != k:
        raise ValueError(f"cell_estimate: {k} values but {len(records)} prediction records")
    y, preds, nc, groups = aligned_predictions(records, metric)
    rng = np.random.default_rng(seed)
    scores = resampled_scores(metric, y, preds, nc, resample_counts(len(y), groups, n_boot, rng))
    resampled = "dialogues" if groups is not None else "utterances"
    if k == 1:
        col = scores[:, 0][~np.isnan(scores[:, 0])]
        test_var = float(col.var(ddof=1)) if len(col) > 1 else float("nan")
        lo, hi = _t_interval(mean, test_var, float("inf"), level)
        return Estimate(mean, lo, hi, float(np.sqrt(test_var)), float("inf"), TEST_ONLY, (1,), len(y),
                        test_var=test_var, level=level, resampled=resampled)
    test_var = max(_mean_cross_cov(scores, scores, same=True), 0.0)
    seed_part = s2 / k
    total = seed_part + test_var
    df = interval_df(test_var, [(seed_part, k)])
    lo, hi = _t_interval(mean, total, df, level)
    return Estimate(mean, lo, hi, float(np.sqrt(total)), df, CROSSED, (k,), len(y), seed_var=seed_part,
                    test_var=test_var, level=level, resampled=resampled, seed_var_per_seed=(s2,))


def difference_estimate(values_a: Sequence[float], values_b: Sequence[float], metric: str,
                        records_a: Sequence[Mapping[str, Any]] | None = None,
                        records_b: Sequence[Mapping[str, Any]] | None = None,
                        n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> Estimate:
    """``mean(A) - mean(B)`` over seeds (A and B trained independently, K_A and K_B seeds,
    scored on the same test set) with its interval and two-sided p (see the module doc).

    ``values_*`` are the stored per-seed scores, ``records_*`` the matching prediction records
    (both or neither). Any NaN value gives a NaN estimate.
    """
    a, b = np.asarray(values_a, dtype=float), np.asarray(values_b, dtype=float)
    ka, kb = len(a), len(b)
    nan = float("nan")
    if ka == 0 or kb == 0 or np.isnan(a).any() or np.isnan(b).any():
        return Estimate(nan, nan, nan, nan, nan, NO_INTERVAL, (ka, kb), 0, level=level)
    delta = float(a.mean() - b.mean())
    s2a = float(a.var(ddof=1)) if ka > 1 else nan
    s2b = float(b.var(ddof=1)) if kb > 1 else nan
    per_seed = (s2a, s2b)
    seeds_known = ka > 1 and kb > 1
    seed_part = s2a / ka + s2b / kb if seeds_known else nan
    if (records_a is None) != (records_b is None):
        raise ValueError("difference_estimate: give prediction records for both models or for neither")
    if records_a is None:
        if not seeds_known:
            return Estimate(delta, nan, nan, nan, nan, NO_INTERVAL, (ka, kb), 0, level=level)
        df = interval_df(0.0, [(s2a / ka, ka), (s2b / kb, kb)])
        return _difference(delta, seed_part, df, SEEDS_ONLY, (ka, kb), 0, seed_part, nan, level, "utterances",
                           per_seed)
    if len(records_a) != ka or len(records_b) != kb:
        raise ValueError(f"difference_estimate: {ka} + {kb} values but {len(records_a)} + {len(records_b)} records")
    y, preds, nc, groups = aligned_predictions([*records_a, *records_b], metric)
    rng = np.random.default_rng(seed)
    scores = resampled_scores(metric, y, preds, nc, resample_counts(len(y), groups, n_boot, rng))
    sa, sb = scores[:, :ka], scores[:, ka:]
    resampled = "dialogues" if groups is not None else "utterances"
    if seeds_known:
        test_var = max(_mean_cross_cov(sa, sa, True) + _mean_cross_cov(sb, sb, True)
                       - 2 * _mean_cross_cov(sa, sb, False), 0.0)
        total = seed_part + test_var
        df = interval_df(test_var, [(s2a / ka, ka), (s2b / kb, kb)])
        return _difference(delta, total, df, CROSSED, (ka, kb), len(y), seed_part, test_var, level, resampled,
                           per_seed)
    d = sa.mean(1) - sb.mean(1)  # one seed on a side: the test-set variance of the difference alone
    d = d[~np.isnan(d)]
    test_var = float(d.var(ddof=1)) if len(d) > 1 else nan
    return _difference(delta, test_var, float("inf"), TEST_ONLY, (ka, kb), len(y), nan, test_var, level, resampled,
                       per_seed)


def _difference(delta: float, total: float, df: float, method: str, n_seeds: tuple[int, int], n_utt: int,
                seed_var: float, test_var: float, level: float, resampled: str,
                per_seed: tuple[float, float]) -> Estimate:
    lo, hi = _t_interval(delta, total, df, level)
    se = float(np.sqrt(total)) if np.isfinite(total) and total >= 0 else float("nan")
    if se > 0 and np.isfinite(se):
        p = float(2 * sps.t.sf(abs(delta) / se, df))
    else:
        p = float("nan") if not np.isfinite(se) else (1.0 if delta == 0 else 0.0)
    return Estimate(delta, lo, hi, se, df, method, n_seeds, n_utt, seed_var=seed_var, test_var=test_var, p=p,
                    level=level, resampled=resampled, seed_var_per_seed=per_seed)


def verdict(est: Estimate, model: str, higher_is_better: bool = True) -> str:
    """What a difference ``model - other`` supports: ``"<model> better"``, ``"<model> worse"``
    or ``"no difference shown"`` (its interval contains 0; never "tie"); ``"not estimated"`` when
    a seed failed or there is no interval."""
    if not (np.isfinite(est.ci_low) and np.isfinite(est.ci_high)):
        return "not estimated"
    if est.ci_low > 0 or est.ci_high < 0:
        return f"{model} better" if (est.ci_low > 0) == higher_is_better else f"{model} worse"
    return "no difference shown"
