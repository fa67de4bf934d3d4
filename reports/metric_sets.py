"""Which metrics a dataset's tables print, in the order its papers print them: the one place
that says so.

* CMU-MOSI / CMU-MOSEI (and any regression dataset): Acc-2 and F1 under both binarisations
  (Has0 and Non0, named in the header), MAE, Corr, Acc-7 (MMSA's and most papers' set).
* CH-SIMS (a dataset whose spec names ``metric_set = "sims"``): MMSA's SIMS set, Acc-2, F1,
  Acc-3, Acc-5, MAE and Corr on predictions clipped to [-1, 1].
* IEMOCAP: Acc and wF1; per-class F1 in a table of its own.
* MELD: wF1 and Acc.
* Any other classification dataset (the synthetic one included): Acc and wF1.

A dataset is recognised by the metric set its stored spec declares (``sims``), else by its label
in the results or the name on its stored dataset card (``mosi``, ``mosei``, ``iemocap`` or
``meld`` anywhere in it, any case).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from harness.metrics import PER_CLASS_PREFIX, metric

MOSI_SET = ("acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "mae", "corr", "acc7")
SIMS_SET = ("sims_acc2", "sims_f1", "sims_acc3", "sims_acc5", "sims_mae", "sims_corr")
IEMOCAP_SET = ("acc", "wf1")
MELD_SET = ("wf1", "acc")
CLASSIFICATION_SET = ("acc", "wf1")
REGRESSION_SET = MOSI_SET

FAMILIES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    # (name fragment, metric set, per-class F1 table) -- "mosei" before "mosi"
    ("mosei", MOSI_SET, False),
    ("mosi", MOSI_SET, False),
    ("iemocap", IEMOCAP_SET, True),
    ("meld", MELD_SET, False),
)

HEADLINE = {"classification": "wf1", "regression": "mae"}


def family(names: Iterable[str | None], declared: str | None = None) -> str | None:
    """The dataset family: ``sims`` when the spec's ``metric_set`` (``declared``) says so, else
    ``mosei``, ``mosi``, ``iemocap`` or ``meld`` when any of ``names`` contains it."""
    if declared == "sims":
        return "sims"
    low = [n.lower() for n in names if n]
    for fragment, _, _ in FAMILIES:
        if any(fragment in n for n in low):
            return fragment
    return None


def metric_set(task: str, names: Iterable[str | None] = (), declared: str | None = None) -> tuple[str, ...]:
    """The metrics the main and robustness tables print for a dataset of ``task``
    (``classification`` or ``regression``) called ``names`` (its label, its card's name) whose
    stored spec declares the metric set ``declared``."""
    if task not in HEADLINE:
        raise ValueError(f"metric_set: task must be 'classification' or 'regression', got {task!r}")
    fam = family(names, declared)
    if fam == "sims" and task == "regression":
        return SIMS_SET
    for fragment, metrics, _ in FAMILIES:
        if fragment == fam and metric(metrics[0]).task == task:
            return metrics
    return CLASSIFICATION_SET if task == "classification" else REGRESSION_SET


def headline(task: str, declared: str | None = None) -> str:
    """The metric a dataset's figures and robustness summaries default to: wF1 for
    classification, MAE for regression (CH-SIMS: MAE of the clipped predictions, as MMSA reports
    it; the unclipped ``mae`` stays the epoch-selection criterion, MMSA's validation L1 loss)."""
    if task == "regression" and declared == "sims":
        return "sims_mae"
    return HEADLINE[task]


def chosen_headline(requested: str | None, task: str, declared: str | None = None) -> str:
    """The report's headline metric for a dataset: the ``requested`` one (``[report] metric``)
    when it fits the dataset's task, else the dataset's default (:func:`headline`)."""
    from harness.metrics import metric as metric_info

    if requested is not None and metric_info(requested).task == task:
        return requested
    return headline(task, declared)


def wants_per_class(task: str, names: Iterable[str | None] = ()) -> bool:
    """Whether the dataset's papers print per-class F1 (IEMOCAP), so the report adds that table."""
    fam = family(names)
    return task == "classification" and any(f == fam and pc for f, _, pc in FAMILIES)


def per_class_metrics(columns: Sequence[str]) -> list[str]:
    """The stored per-class F1 metrics (``f1_<class>``) among result ``columns`` (``metric_<name>``),
    in stored order; the regression F1s (``f1_has0``, ``f1_non0``) are not per-class."""
    out = []
    for c in columns:
        name = c[len("metric_"):] if c.startswith("metric_") else None
        if name and name.startswith(PER_CLASS_PREFIX) and name not in ("f1_has0", "f1_non0"):
            out.append(name)
    return out


def task_of(rows: pd.DataFrame) -> str:
    """``classification`` when ``rows`` (one dataset's result rows) hold a ``wf1`` value,
    ``regression`` when they hold an ``mae`` value."""
    for col, task in (("metric_wf1", "classification"), ("metric_mae", "regression")):
        if col in rows.columns and rows[col].notna().any():
            return task
    raise ValueError(f"task_of: the rows hold neither wf1 nor mae values; metric columns "
                     f"{sorted(c for c in rows.columns if c.startswith('metric_'))}")
