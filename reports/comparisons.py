"""One model against every other model of a run: the clean test set and each corruption at its
highest severity, as a difference of seed means with its interval, what the run could detect,
and a verdict read off the interval.

:func:`comparison_rows` is the one place a run's model-vs-model verdicts are computed: the
report's comparison table and ``reports.summary`` (which a README quotes) both read it. The
interval is :func:`reports.intervals.difference_stats` (training seeds and the shared test set;
docs/METRICS.md, Statistics). No correction for multiple comparisons is applied here: each
verdict is read off its own 95% interval, and the table says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.metrics import metric as metric_info
from harness.store import CLEAN
from reports.frames import DatasetFrames, Report, RunFrames, Section
from reports.inference import POWER, verdict
from reports.intervals import N_BOOT, difference_stats
from reports.latex import Table, fmt
from reports.main_table import all_rows

Predictions = Callable[[str], Mapping[str, Any] | None]


def conditions(df: pd.DataFrame) -> list[tuple[str, int]]:
    """``(corruption, severity)``: the clean cell, then each corruption at its highest severity."""
    out = [(CLEAN, 0)]
    corrupted = df[df["corruption"] != CLEAN]
    for corr, g in corrupted.groupby("corruption", sort=True):
        out.append((str(corr), int(g["severity"].max())))
    return out


def condition_name(corruption: str, severity: int) -> str:
    return CLEAN if corruption == CLEAN else f"{corruption}@{severity}"


def seed_cells(rows: pd.DataFrame, col: str) -> tuple[np.ndarray, list[str]]:
    """The per-seed scores (NaN for a failed seed) and cell keys of one model's rows of one
    condition, in seed order."""
    rows = rows.sort_values("seed")
    return rows[col].to_numpy(float), list(rows["cell_key"])


def comparison_rows(df: pd.DataFrame, model: str, metric_name: str, predictions: Predictions | None = None,
                    others: Sequence[str] | None = None, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """``model`` against every other variant (or ``others``) of one dataset's undefended rows,
    in every condition of :func:`conditions`.

    Columns: model, other, condition, delta (``mean(model) - mean(other)``, stored units),
    ci_low, ci_high, p, se, df, method, n_seeds_model, n_seeds_other, n_utterances, resampled,
    detectable (the difference detected with 80% power), seeds_to_detect (seeds per model at
    which the observed delta would be, NaN when the test set alone prevents it), verdict.
    """
    col = f"metric_{metric_name}"
    d = all_rows(df)
    d = d[d["defense"] == "none"]
    if col not in d.columns:
        raise ValueError(f"comparisons: metric {metric_name!r} is not in the results")
    if model not in set(d["variant"]):
        raise ValueError(f"comparisons: model {model!r} has no rows; models: {sorted(set(d['variant']))}")
    higher = metric_info(metric_name).higher_is_better
    out = []
    for corr, sev in conditions(d[d["status"] == "ok"]):
        sel = d[(d["corruption"] == corr) & (d["severity"] == sev)]
        base = sel[sel["variant"] == model]
        if base.empty:
            continue
        va, ka = seed_cells(base, col)
        names = sorted(set(sel["variant"]) - {model}) if others is None else [o for o in others if o != model]
        for other in names:
            g = sel[sel["variant"] == other]
            if g.empty:
                continue
            vb, kb = seed_cells(g, col)
            est = difference_stats(va, ka, vb, kb, metric_name, predictions, n_boot=n_boot, seed=seed)
            needed = est.seeds_to_detect() if not est.shown else None
            out.append({"model": model, "other": other, "condition": condition_name(corr, sev), "delta": est.estimate,
                        "ci_low": est.ci_low, "ci_high": est.ci_high, "p": est.p, "se": est.se, "df": est.df,
                        "method": est.method, "n_seeds_model": est.n_seeds[0], "n_seeds_other": est.n_seeds[1],
                        "n_utterances": est.n_utterances, "resampled": est.resampled,
                        "detectable": est.detectable(POWER), "seeds_to_detect": np.nan if needed is None else needed,
                        "verdict": verdict(est, model, higher)})
    return pd.DataFrame(out)


def _points(x: float, scale: float, digits: int, signed: bool = True) -> str:
    if x is None or np.isnan(x):
        return "–"
    return f"{x * scale:+.{digits}f}" if signed else fmt(x * scale, digits)


def comparisons_table(rows: pd.DataFrame, metric_name: str, dataset: str) -> Table:
    """The report's table of :func:`comparison_rows`: per comparison and condition the delta with
    its 95% interval, the verdict, n, and the smallest difference the run could detect."""
    m = metric_info(metric_name)
    s, dg = m.scale, m.decimals
    header = ["Comparison", "Condition", f"Δ {m.display}", "95% interval", "Verdict", "n (seeds × utt.)",
              "Detectable\n(80% power)"]
    body = []
    for r in rows.itertuples():
        n = f"{r.n_seeds_model}+{r.n_seeds_other} × {r.n_utterances}"
        body.append([f"{r.model} vs {r.other}", r.condition, _points(r.delta, s, dg),
                     f"[{_points(r.ci_low, s, dg)}, {_points(r.ci_high, s, dg)}]", r.verdict, n,
                     _points(r.detectable, s, dg, signed=False)])
    methods = sorted(set(rows["method"]))
    note = (f"Δ: difference of the seed means ({m.display}, {'points' if m.unit == '%' else 'as stored'}). Interval: "
            f"{'; '.join(methods)}. Each verdict is read off its own interval, with no correction for the number of "
            f"comparisons; 'no difference shown' is not a tie: the last column gives the smallest true difference "
            f"this run detects with 80% probability.")
    return Table(header, body, [[False] * len(header) for _ in body], caption=f"Model comparisons on {dataset}.",
                 label=f"tab:comparisons-{dataset}", note=note)


def comparisons_section(rep: Report, run: RunFrames, data: DatasetFrames) -> Section | None:
    """The report's section of :func:`comparisons_table`: the full model against every other
    model (``None`` without a full model or another model)."""
    full = run.full_model
    if full is None or full not in set(data.ok["variant"]) or len(set(data.ok["variant"])) < 2:
        return None
    sec = rep.section(f"{data.name}: comparisons")
    rows = comparison_rows(data.rows, full, data.headline, run.predictions, n_boot=run.n_boot)
    rep.csv(rows, run.run_dir / "tables" / f"comparisons_{data.name}.csv")
    rep.table(sec, f"comparisons_{data.name}", comparisons_table(rows, data.headline, data.name),
              f"{full} against every other model on {data.name}",
              "Clean and at each corruption's highest severity: the difference, its interval and method, n, and "
              "what the run could detect.")
    return sec
