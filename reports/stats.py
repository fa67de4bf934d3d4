"""Paired tests between two models' predictions of one training each, and Holm's correction.

Intervals over training seeds (what tables print) are :mod:`reports.inference`'s; the tests here
compare two single predictions records, utterance by utterance:

* :func:`paired_bootstrap` / :func:`paired_permutation` — two models scored on the *same*
  utterances (predictions aligned by uid): resample utterances (or swap the two models'
  predictions per utterance) and recompute the metric on both, giving the effect
  ``metric(A) - metric(B)`` with a CI and a two-sided p-value.
* :func:`holm` — Holm's step-down adjustment of a list of p-values.

Every metric of the metric table (:data:`harness.metrics.METRICS`) is recomputed per
resample by its own vectorised definition, so 2,000 resamples of a few thousand utterances
take well under a second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from harness.metrics import METRICS, higher_is_better, score_rows

_CHUNK = 250  # resamples scored at once (memory: _CHUNK x M x C booleans)


def _row_metric(metric: str, y: np.ndarray, p: np.ndarray, n_classes: int | None) -> np.ndarray:
    """``metric`` of every row of ``y``/``p`` (``[R, M]``), from the metric table."""
    return score_rows(metric, y, p, n_classes)


PAIRED_METRICS = frozenset(METRICS)


def _as_predicted(outputs: np.ndarray, name: str) -> np.ndarray:
    """``[M, C]`` logits -> ``[M]`` predicted classes; ``[M]`` scores unchanged."""
    outputs = np.asarray(outputs)
    if outputs.ndim == 2:
        return outputs.argmax(-1)
    if outputs.ndim == 1:
        return outputs.astype(float)
    raise ValueError(f"{name}: outputs must be [M, C] logits or [M] scores, got shape {outputs.shape}")


def align(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int | None]:
    """Align two prediction records (``{"uids", "targets", "outputs"}`` as returned by
    ``ResultStore.predictions``) by uid.

    Returns ``(targets [M], pred_a [M], pred_b [M], n_classes or None)`` where predictions are
    class indices (classification) or scores (regression). Raises ``ValueError`` when the two
    records do not cover the same utterances or disagree on a target.
    """
    for name, r in (("a", a), ("b", b)):
        missing = {"uids", "targets", "outputs"} - set(r)
        if missing:
            raise ValueError(f"prediction record {name} lacks keys {sorted(missing)}; expected uids, targets, outputs")
        if len(r["uids"]) != len(r["targets"]) or len(r["uids"]) != len(r["outputs"]):
            raise ValueError(f"prediction record {name}: {len(r['uids'])} uids, {len(r['targets'])} targets, "
                             f"{len(r['outputs'])} outputs; expected equal lengths")
    ia = {u: i for i, u in enumerate(a["uids"])}
    ib = {u: i for i, u in enumerate(b["uids"])}
    if len(ia) != len(a["uids"]) or len(ib) != len(b["uids"]):
        raise ValueError("prediction records hold duplicate uids; a paired test needs one prediction per utterance")
    if set(ia) != set(ib):
        only_a, only_b = sorted(set(ia) - set(ib)), sorted(set(ib) - set(ia))
        raise ValueError(f"paired test needs the identical test set: {len(only_a)} uids only in a (e.g. {only_a[:3]}), "
                         f"{len(only_b)} only in b (e.g. {only_b[:3]})")
    uids = list(a["uids"])
    oa = np.asarray(a["outputs"])
    ob = np.asarray(b["outputs"])[[ib[u] for u in uids]]
    if oa.ndim != ob.ndim or (oa.ndim == 2 and oa.shape[1] != ob.shape[1]):
        raise ValueError(f"prediction records have different output shapes {oa.shape} and {ob.shape}")
    ta = np.asarray(a["targets"])
    tb = np.asarray(b["targets"])[[ib[u] for u in uids]]
    if not np.allclose(ta.astype(float), tb.astype(float)):
        bad = int(np.argmax(~np.isclose(ta.astype(float), tb.astype(float))))
        raise ValueError(f"prediction records disagree on the target of uid {uids[bad]!r}: {ta[bad]} vs {tb[bad]}")
    n_classes = int(oa.shape[1]) if oa.ndim == 2 else None
    return ta, _as_predicted(oa, "a"), _as_predicted(ob, "b"), n_classes


def _check_metric(metric: str, n_classes: int | None) -> None:
    if metric not in PAIRED_METRICS:
        raise ValueError(f"paired statistics: metric {metric!r} is not supported; expected one of {sorted(PAIRED_METRICS)}")
    if (n_classes is None) != (METRICS[metric].task == "regression"):
        kind = "classification logits [M, C]" if METRICS[metric].task == "classification" else "regression scores [M]"
        raise ValueError(f"metric {metric!r} needs {kind}; the predictions are "
                         f"{'scores' if n_classes is None else 'logits'}")


def _chunked(n_total: int, fn: Callable[[int], np.ndarray]) -> np.ndarray:
    out, done = [], 0
    while done < n_total:
        k = min(_CHUNK, n_total - done)
        out.append(fn(k))
        done += k
    return np.concatenate(out) if out else np.zeros(0)


def paired_bootstrap(a: Mapping[str, Any], b: Mapping[str, Any], metric: str, n_boot: int = 2000,
                     level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Paired percentile bootstrap of ``metric(A) - metric(B)`` over utterances.

    ``a``/``b``: prediction records (``uids``, ``targets``, ``outputs``) of two models on the same
    test set. Each resample draws M utterances with replacement and scores both models on it.
    Returns ``effect`` (observed difference, metric units, positive = A larger), ``ci_low``,
    ``ci_high``, two-sided ``p`` (``2 * min(P*(d <= 0), P*(d >= 0))``, capped at 1), ``n``
    utterances, ``metric`` and ``higher_is_better``.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    y, pa, pb, nc = align(a, b)
    _check_metric(metric, nc)
    m = len(y)
    effect = float(_row_metric(metric, y[None], pa[None], nc)[0] - _row_metric(metric, y[None], pb[None], nc)[0])
    rng = np.random.default_rng(seed)

    def draw(k: int) -> np.ndarray:
        idx = rng.integers(0, m, size=(k, m))
        return _row_metric(metric, y[idx], pa[idx], nc) - _row_metric(metric, y[idx], pb[idx], nc)

    d = _chunked(n_boot, draw)
    d = d[~np.isnan(d)]
    if len(d) == 0:
        lo = hi = p = float("nan")
    else:
        lo, hi = (float(x) for x in np.quantile(d, [(1 - level) / 2, 1 - (1 - level) / 2]))
        p = float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())))
    return {"metric": metric, "effect": effect, "ci_low": lo, "ci_high": hi, "p": p, "n": m,
            "n_boot": n_boot, "higher_is_better": higher_is_better(metric)}


def paired_permutation(a: Mapping[str, Any], b: Mapping[str, Any], metric: str, n_perm: int = 2000,
                       seed: int = 0) -> dict[str, Any]:
    """Paired permutation test of ``metric(A) - metric(B)``: each permutation swaps the two
    models' predictions of every utterance independently with probability 1/2.

    Returns ``effect``, two-sided ``p = (1 + #{|d*| >= |d|}) / (1 + n_perm)``, ``n``, ``metric``.
    """
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1, got {n_perm}")
    y, pa, pb, nc = align(a, b)
    _check_metric(metric, nc)
    m = len(y)
    effect = float(_row_metric(metric, y[None], pa[None], nc)[0] - _row_metric(metric, y[None], pb[None], nc)[0])
    rng = np.random.default_rng(seed)
    yy = np.broadcast_to(y, (_CHUNK, m))

    def draw(k: int) -> np.ndarray:
        swap = rng.random((k, m)) < 0.5
        xa, xb = np.where(swap, pb, pa), np.where(swap, pa, pb)
        return _row_metric(metric, yy[:k], xa, nc) - _row_metric(metric, yy[:k], xb, nc)

    d = _chunked(n_perm, draw)
    tol = 1e-12
    p = float((1 + np.sum(np.abs(d) >= abs(effect) - tol)) / (1 + n_perm))
    return {"metric": metric, "effect": effect, "p": p, "n": m, "n_perm": n_perm,
            "higher_is_better": higher_is_better(metric)}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order.

    With p sorted ascending ``p_(1) <= ... <= p_(k)``: ``adj_(i) = max_{j <= i} min(1, (k - j + 1) p_(j))``.
    NaN p-values are left NaN and do not count towards ``k``.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"holm: pvalues must be a flat list, got shape {p.shape}")
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"holm: p-values must lie in [0, 1], got {p.tolist()}")
    out = np.full(len(p), np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    k = len(valid)
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p[i]))
        out[i] = running
    return out.tolist()
