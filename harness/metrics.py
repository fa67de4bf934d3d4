"""The metric table: every metric's name, display name, scale, direction and definition, once.

Training (epoch selection), statistics (paired tests), tables and figures all read
:data:`METRICS`; nothing else states a metric's direction or scale. Values are computed as
fractions in [0, 1] (MAE and correlation as they are) by one vectorised function per metric,
which scores ``R`` rows at once (``[R, M]`` arrays), so the same code gives a split's score and
2,000 bootstrap resamples of it.

Classification (``y``: labels, ``p``: predicted classes): ``acc``, ``wf1`` (weighted F1, the
headline of conversation emotion recognition), ``mf1`` (macro F1), ``f1_<class>``.
Sentiment regression (``y``, ``p``: scores in [-3, 3]; the conventions of MMSA's metrics,
followed by most MOSI/MOSEI papers): ``mae``, ``corr``, ``acc2_has0`` / ``f1_has0`` (negative
vs. non-negative over all utterances), ``acc2_non0`` / ``f1_non0`` (negative vs. positive,
utterances labelled 0 removed), ``acc5`` and ``acc7`` (clip to [-2, 2] / [-3, 3], round, exact
match). CH-SIMS (labels in [-1, 1], MMSA's SIMS evaluation): ``sims_acc2``, ``sims_f1``,
``sims_acc3``, ``sims_acc5``, ``sims_mae``, ``sims_corr``, all on predictions and labels clipped to
[-1, 1]. F1 follows scikit-learn's ``average='weighted'`` with ``zero_division=0``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

RowMetric = Callable[[np.ndarray, np.ndarray, "int | None"], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """One metric. ``fn(y, p, n_classes)`` scores each row of ``[R, M]`` arrays -> ``[R]``.

    ``scale`` turns a value into its printed unit (100 for fractions printed as %, 1 for MAE
    and correlation); ``decimals`` is the printed precision after scaling.
    """

    name: str
    display: str
    task: str
    higher_is_better: bool
    fn: RowMetric
    scale: float = 100.0
    decimals: int = 1
    description: str = ""

    @property
    def unit(self) -> str:
        return "%" if self.scale == 100.0 else ""

    @property
    def arrow(self) -> str:
        """``↑`` or ``↓``: the direction marker tables and axis labels print."""
        return "↑" if self.higher_is_better else "↓"

    def label(self) -> str:
        """Axis and column label: display name, unit and direction, e.g. ``wF1 (%) ↑``, ``MAE ↓``."""
        return f"{self.display}{f' ({self.unit})' if self.unit else ''} {self.arrow}"

    def format(self, value: float) -> str:
        """``value`` (a fraction / raw value) in printed units, e.g. ``0.6123`` -> ``61.2``."""
        return "–" if value is None or np.isnan(value) else f"{value * self.scale:.{self.decimals}f}"


# ------------------------------------------------------------------ vectorised definitions

def _f1_per_class(y: np.ndarray, p: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class F1 and support, ``[R, C]`` each (zero_division=0)."""
    f1 = np.zeros((y.shape[0], n_classes))
    support = np.zeros((y.shape[0], n_classes))
    for c in range(n_classes):
        yt, pt = y == c, p == c
        tp = (yt & pt).sum(1)
        denom = yt.sum(1) + pt.sum(1)
        f1[:, c] = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
        support[:, c] = yt.sum(1)
    return f1, support


def _weighted_f1(y: np.ndarray, p: np.ndarray, n_classes: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Support-weighted F1 over the entries where ``valid`` (all when None)."""
    if valid is None:
        f1, support = _f1_per_class(y, p, n_classes)
        return (f1 * support).sum(1) / max(y.shape[1], 1)
    # entries outside ``valid`` get class -1: they count for no class
    f1, support = _f1_per_class(np.where(valid, y, -1), np.where(valid, p, -2), n_classes)
    n = support.sum(1)
    return np.where(n > 0, (f1 * support).sum(1) / np.maximum(n, 1), np.nan)


def round_clip(v: np.ndarray, bound: float) -> np.ndarray:
    """MMSA's Acc-5/Acc-7 binning: clip to ``[-bound, bound]`` and round to the nearest integer."""
    return np.round(np.clip(v, -bound, bound))


def _acc(y, p, _):
    return (y == p).mean(1)


def _wf1(y, p, n):
    return _weighted_f1(y, p, n)


def _mf1(y, p, n):
    return _f1_per_class(y, p, n)[0].mean(1)


def _mae(y, p, _):
    return np.abs(y - p).mean(1)


def _corr(y, p, _):
    """Pearson correlation per row, in [-1, 1]; NaN where the labels or the predictions of a row
    are constant. Constancy is tested exactly (max == min), not through the centred sums, which
    rounding leaves at about 1e-16 for a constant row; rounding can also push |r| one ulp past 1,
    hence the clip."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    constant = (np.ptp(y, axis=1) == 0) | (np.ptp(p, axis=1) == 0) if y.shape[1] else np.ones(len(y), bool)
    yc, pc = y - y.mean(1, keepdims=True), p - p.mean(1, keepdims=True)
    den = np.sqrt((yc ** 2).sum(1) * (pc ** 2).sum(1))
    ok = ~constant & (den > 0)
    r = np.clip((yc * pc).sum(1) / np.where(ok, den, 1.0), -1.0, 1.0)
    return np.where(ok, r, np.nan)


def _acc2_has0(y, p, _):
    return ((y >= 0) == (p >= 0)).mean(1)


def _f1_has0(y, p, _):
    return _weighted_f1((y >= 0).astype(int), (p >= 0).astype(int), 2)


def _acc2_non0(y, p, _):
    nz = y != 0
    n = nz.sum(1)
    return np.where(n > 0, (((y > 0) == (p > 0)) & nz).sum(1) / np.maximum(n, 1), np.nan)


def _f1_non0(y, p, _):
    return _weighted_f1((y > 0).astype(int), (p > 0).astype(int), 2, valid=y != 0)


def _acc5(y, p, _):
    return (round_clip(y, 2.0) == round_clip(p, 2.0)).mean(1)


def _acc7(y, p, _):
    return (round_clip(y, 3.0) == round_clip(p, 3.0)).mean(1)


# CH-SIMS (labels in [-1, 1]), as MMSA scores it: predictions and labels are clipped to [-1, 1]
# first; Acc-2 puts 0 with the negatives ([-1, 0] vs (0, 1]); Acc-3 and Acc-5 bin at the edges
# below, each bin (lower, upper]. MMSA compares in float32 (its tensors' precision), so the bins
# are taken in float32 here too: a value stored as float32 0.1 falls in the bin that ends at 0.1.
SIMS_EDGES = {2: (0.0,), 3: (-0.1, 0.1), 5: (-0.7, -0.1, 0.1, 0.7)}


def sims_classes(v: np.ndarray, n_bins: int) -> np.ndarray:
    """MMSA's CH-SIMS class of every value: clip to [-1, 1], then the number of edges of
    :data:`SIMS_EDGES` ``[n_bins]`` that the value lies strictly above (0 .. n_bins - 1)."""
    clipped = np.clip(np.asarray(v, dtype=np.float64), -1.0, 1.0).astype(np.float32)
    return (clipped[..., None] > np.asarray(SIMS_EDGES[n_bins], dtype=np.float32)).sum(-1)


def _sims_acc(n_bins: int) -> RowMetric:
    def acc(y, p, _):
        return (sims_classes(y, n_bins) == sims_classes(p, n_bins)).mean(1)
    return acc


def _sims_f1(y, p, _):
    return _weighted_f1(sims_classes(y, 2), sims_classes(p, 2), 2)


def _clipped(y, p):
    return np.clip(np.asarray(y, dtype=np.float64), -1, 1), np.clip(np.asarray(p, dtype=np.float64), -1, 1)


def _sims_mae(y, p, _):
    return _mae(*_clipped(y, p), None)


def _sims_corr(y, p, _):
    return _corr(*_clipped(y, p), None)


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("acc", "Acc", "classification", True, _acc, description="accuracy over real utterances"),
    Metric("wf1", "wF1", "classification", True, _wf1, description="support-weighted F1"),
    Metric("mf1", "mF1", "classification", True, _mf1, description="macro F1 (mean over classes)"),
    Metric("mae", "MAE", "regression", False, _mae, scale=1.0, decimals=3, description="mean absolute error"),
    Metric("corr", "Corr", "regression", True, _corr, scale=1.0, decimals=3, description="Pearson correlation"),
    Metric("acc2_has0", "Acc-2 (Has0)", "regression", True, _acc2_has0,
           description="negative vs. non-negative (y >= 0), all utterances"),
    Metric("f1_has0", "F1 (Has0)", "regression", True, _f1_has0, description="weighted F1 of the Has0 split"),
    Metric("acc2_non0", "Acc-2 (Non0)", "regression", True, _acc2_non0,
           description="negative vs. positive, utterances labelled 0 removed"),
    Metric("f1_non0", "F1 (Non0)", "regression", True, _f1_non0, description="weighted F1 of the Non0 split"),
    Metric("acc5", "Acc-5", "regression", True, _acc5, description="clip to [-2, 2], round, exact match"),
    Metric("acc7", "Acc-7", "regression", True, _acc7, description="clip to [-3, 3], round, exact match"),
    Metric("sims_acc2", "Acc-2", "regression", True, _sims_acc(2),
           description="CH-SIMS: clip to [-1, 1]; [-1, 0] vs (0, 1] (0 counts as negative)"),
    Metric("sims_f1", "F1", "regression", True, _sims_f1, description="CH-SIMS: weighted F1 of the Acc-2 classes"),
    Metric("sims_acc3", "Acc-3", "regression", True, _sims_acc(3),
           description="CH-SIMS: clip to [-1, 1]; bins split at -0.1 and 0.1"),
    Metric("sims_acc5", "Acc-5", "regression", True, _sims_acc(5),
           description="CH-SIMS: clip to [-1, 1]; bins split at -0.7, -0.1, 0.1 and 0.7"),
    Metric("sims_mae", "MAE", "regression", False, _sims_mae, scale=1.0, decimals=3,
           description="CH-SIMS: mean absolute error after clipping both to [-1, 1]"),
    Metric("sims_corr", "Corr", "regression", True, _sims_corr, scale=1.0, decimals=3,
           description="CH-SIMS: Pearson correlation after clipping both to [-1, 1]"),
)}
SIMS_METRICS = tuple(n for n in METRICS if n.startswith("sims_"))
METRIC_SETS = ("default", "sims")
"""What a :class:`~harness.data.DataSpec` may name as its ``metric_set``: ``default`` (the task's
metrics; for regression MOSI/MOSEI's) or ``sims`` (MMSA's CH-SIMS evaluation, regression only)."""
CLASSIFICATION_METRICS = tuple(n for n, m in METRICS.items() if m.task == "classification")
REGRESSION_METRICS = tuple(n for n, m in METRICS.items() if m.task == "regression" and n not in SIMS_METRICS)
PER_CLASS_PREFIX = "f1_"


def metric(name: str) -> Metric:
    """The :class:`Metric` called ``name``; ``f1_<class>`` (per-class F1) is built on demand.

    Unknown names raise ``KeyError`` listing the known ones.
    """
    if name in METRICS:
        return METRICS[name]
    if name.startswith(PER_CLASS_PREFIX):
        cls = name[len(PER_CLASS_PREFIX):]
        return Metric(name, f"F1 {cls}", "classification", True, _per_class_unavailable,
                      description=f"F1 of class {cls!r}")
    raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)} and f1_<class>")


def _per_class_unavailable(y, p, n):  # per-class F1 needs the class index: computed in score()
    raise ValueError("per-class F1 is computed by compute_metrics, not resampled")


def higher_is_better(name: str) -> bool:
    return metric(name).higher_is_better


def default_metric(task: str) -> str:
    """Headline metric: weighted F1 for classification, MAE for regression."""
    return "wf1" if task == "classification" else "mae"


def score_rows(name: str, y: np.ndarray, p: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """``name`` of every row of ``[R, M]`` labels/classes (or scores) -> ``[R]``."""
    return metric(name).fn(np.asarray(y), np.asarray(p), n_classes)


# ------------------------------------------------------------------ one split's metrics

def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> dict[str, float]:
    """Accuracy, weighted and macro F1 over all given classes, and per-class F1."""
    y, p = np.asarray(y_true)[None], np.asarray(y_pred)[None]
    if y.shape[1] == 0:
        raise ValueError("classification_metrics: no utterances to score")
    n = len(class_names)
    out = {name: float(score_rows(name, y, p, n)[0]) for name in CLASSIFICATION_METRICS}
    per_class = _f1_per_class(y, p, n)[0][0]
    for cls, v in zip(class_names, per_class):
        out[f"{PER_CLASS_PREFIX}{cls}"] = float(v)
    return out


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float], metric_set: str = "default") -> dict[str, float]:
    """The MOSI/MOSEI sentiment set; with ``metric_set="sims"`` the CH-SIMS set instead, beside
    ``mae`` of the raw predictions (the L1 loss MMSA selects SIMS epochs on). Non-zero metrics are
    NaN when every label is zero."""
    if metric_set not in METRIC_SETS:
        raise ValueError(f"regression_metrics: metric_set must be one of {METRIC_SETS}, got {metric_set!r}")
    y = np.asarray(y_true, dtype=np.float64)[None]
    p = np.asarray(y_pred, dtype=np.float64)[None]
    if y.shape[1] == 0:
        raise ValueError("regression_metrics: no utterances to score")
    names = ("mae", *SIMS_METRICS) if metric_set == "sims" else REGRESSION_METRICS
    return {name: float(score_rows(name, y, p)[0]) for name in names}


def compute_metrics(task: str, y_true: np.ndarray, prediction: np.ndarray,
                    class_names: Sequence[str] | None = None, metric_set: str = "default") -> dict[str, float]:
    """Metrics of ``task`` from targets and raw predictions (``[M, C]`` logits or ``[M]`` scores);
    ``metric_set`` as a :class:`~harness.data.DataSpec` names it (``sims``: MMSA's CH-SIMS set)."""
    if task == "classification":
        if class_names is None:
            raise ValueError("compute_metrics: class_names are required for classification")
        return classification_metrics(y_true, np.asarray(prediction).argmax(-1), class_names)
    return regression_metrics(y_true, prediction, metric_set)

