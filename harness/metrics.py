"""Metrics of ../shared/METRICS.md, returned as fractions (MAE and correlation as they are).

Classification: ``acc``, ``wf1``, ``mf1``, ``f1_<class>``. Sentiment regression (MMSA
conventions, ``utils/metricsTop.py``): ``mae``, ``corr``, ``acc2_has0``, ``f1_has0``,
``acc2_non0``, ``f1_non0``, ``acc5``, ``acc7``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CLASSIFICATION_METRICS = ("acc", "wf1", "mf1")
REGRESSION_METRICS = ("mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc5", "acc7")
LOWER_IS_BETTER = frozenset({"mae"})


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> dict[str, float]:
    """Accuracy, weighted and macro F1 over all given classes, and per-class F1."""
    from sklearn.metrics import accuracy_score, f1_score  # here: importing sklearn costs ~1 s per CLI call

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        raise ValueError("classification_metrics: no utterances to score")
    labels = list(range(len(class_names)))
    out = {
        "acc": float(accuracy_score(y_true, y_pred)),
        "wf1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "mf1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
    }
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    for name, v in zip(class_names, per_class):
        out[f"f1_{name}"] = float(v)
    return out


def _round_clip_acc(y: np.ndarray, p: np.ndarray, bound: float) -> float:
    return float(np.mean(np.round(np.clip(y, -bound, bound)) == np.round(np.clip(p, -bound, bound))))


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """The MOSI/MOSEI sentiment set. Non-zero metrics are NaN when every label is zero."""
    from sklearn.metrics import accuracy_score, f1_score

    y, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if len(y) == 0:
        raise ValueError("regression_metrics: no utterances to score")
    out = {"mae": float(np.mean(np.abs(y - p)))}
    out["corr"] = float(np.corrcoef(y, p)[0, 1]) if len(y) > 1 and y.std() > 0 and p.std() > 0 else float("nan")
    has0_t, has0_p = y >= 0, p >= 0
    out["acc2_has0"] = float(accuracy_score(has0_t, has0_p))
    out["f1_has0"] = float(f1_score(has0_t, has0_p, average="weighted", zero_division=0))
    nz = y != 0
    if nz.any():
        out["acc2_non0"] = float(accuracy_score(y[nz] > 0, p[nz] > 0))
        out["f1_non0"] = float(f1_score(y[nz] > 0, p[nz] > 0, average="weighted", zero_division=0))
    else:
        out["acc2_non0"] = out["f1_non0"] = float("nan")
    out["acc5"] = _round_clip_acc(y, p, 2.0)
    out["acc7"] = _round_clip_acc(y, p, 3.0)
    return out


def compute_metrics(task: str, y_true: np.ndarray, prediction: np.ndarray,
                    class_names: Sequence[str] | None = None) -> dict[str, float]:
    """Metrics of ``task`` from targets and raw predictions (``[M, C]`` logits or ``[M]`` scores)."""
    if task == "classification":
        if class_names is None:
            raise ValueError("compute_metrics: class_names are required for classification")
        return classification_metrics(y_true, np.asarray(prediction).argmax(-1), class_names)
    return regression_metrics(y_true, prediction)


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def as_higher_better(metric: str, value: float) -> float:
    """Map a metric so that higher is better (``mae`` -> ``1 - mae/3``, as METRICS.md allows)."""
    return 1.0 - value / 3.0 if metric == "mae" else value


def default_metric(task: str) -> str:
    """Headline metric: weighted F1 for classification, MAE for regression."""
    return "wf1" if task == "classification" else "mae"
