"""The ablation table: every variant of the full model, clean and at the worst condition, with
its difference to the full model.

``Δ`` is the difference of the two **printed** means (variant − full model, each the mean over
seeds rounded as printed), so a reader can check it against the columns. Its significance
comes from the interval of the same quantity, the difference of the seed means
(:func:`reports.intervals.difference_stats`: the seeds' scatter and the shared test set, a t
quantile; the seeds alone when predictions are not stored), with
Holm's correction of its p-values over all rows. A variant or full model with a failed seed
has no mean in that setting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.metrics import metric
from harness.store import CLEAN
from reports.comparisons import seed_cells
from reports.inference import POWER
from reports.intervals import difference_stats
from reports.latex import Table, best_mask, fmt
from reports.main_table import all_rows, header_label, one_dataset
from reports.stats import holm

_PAIR_KEYS = ["dataset", "seed", "corruption", "severity", "defense", "split"]


def worst_condition(d: pd.DataFrame, metric_name: str, full: str, corruption: str | None) -> tuple[str, int] | None:
    """``(corruption, highest severity)`` at which the full model's mean score is worst (lowest
    for a higher-is-better metric, highest for MAE), among ``corruption``'s rows when given."""
    col = f"metric_{metric_name}"
    corrupted = d[(d["corruption"] != CLEAN) & (d["variant"] == full)]
    if corruption is not None:
        corrupted = corrupted[corrupted["corruption"] == corruption]
        if corrupted.empty:
            raise ValueError(f"ablation_rows: no rows of the full model under corruption {corruption!r}")
    if corrupted.empty:
        return None
    top = corrupted[corrupted["severity"] == corrupted.groupby("corruption")["severity"].transform("max")]
    means = top.groupby(["corruption", "severity"])[col].mean()
    worst = means.idxmin() if metric(metric_name).higher_is_better else means.idxmax()
    return str(worst[0]), int(worst[1])


def ablation_rows(df: pd.DataFrame, metric_name: str, full: str, variants: Sequence[str] | None = None,
                  corruption: str | None = None, dataset: str | None = None,
                  predictions: Callable[[str], Mapping[str, Any] | None] | None = None,
                  n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """Each variant against ``full``, clean and at the worst condition (:func:`worst_condition`).

    Columns: variant, setting ("clean"/"worst"), condition, corruption, severity, mean, std,
    full_mean, full_std (over seeds, metric units), ``delta`` (mean − full_mean), ``ci_low``,
    ``ci_high`` (95% interval of ``delta``), ``p``, ``p_holm``, ``significant``
    (``p_holm < alpha``), ``n_seeds`` (the variant's seeds), ``full_n_seeds``, ``n_utterances``,
    ``test`` (the interval's method), ``se``, ``detectable`` (the difference detected with 80%
    power), ``n_failed`` (failed seeds of either).
    """
    col = f"metric_{metric_name}"
    if col not in df.columns:
        raise ValueError(f"ablation_rows: metric {metric_name!r} not in the results")
    d = all_rows(df)
    d = d[d["defense"] == "none"]
    d, dataset = one_dataset(d, dataset, "ablation_rows")
    ok = d[d["status"] == "ok"]
    if full not in set(ok["variant"]):
        raise ValueError(f"ablation_rows: full model {full!r} not among variants {sorted(ok['variant'].unique())}")
    variants = [v for v in (variants or sorted(d["variant"].unique())) if v != full]
    unknown = sorted(set(variants) - set(d["variant"]))
    if unknown:
        raise ValueError(f"ablation_rows: variants {unknown} not in the results; available {sorted(d['variant'].unique())}")
    conditions = [("clean", CLEAN, 0)]
    worst = worst_condition(ok, metric_name, full, corruption)
    if worst is not None:
        conditions.append(("worst", *worst))
    rows = []
    for variant in variants:
        for setting, corr, sev in conditions:
            sel = d[(d["corruption"] == corr) & (d["severity"] == sev)]
            a, b = sel[sel["variant"] == variant], sel[sel["variant"] == full]
            if a.empty or b.empty:
                continue
            va, ka = seed_cells(a, col)
            vb, kb = seed_cells(b, col)
            est = difference_stats(va, ka, vb, kb, metric_name, predictions, n_boot=n_boot, seed=seed)
            rows.append({"variant": variant, "setting": setting, "condition": corr if sev == 0 else f"{corr}@{sev}",
                         "corruption": corr, "severity": sev, "mean": _strict_mean(va), "std": _std(va),
                         "full_mean": _strict_mean(vb), "full_std": _std(vb), "delta": est.estimate,
                         "ci_low": est.ci_low, "ci_high": est.ci_high, "p": est.p, "n_seeds": len(va),
                         "full_n_seeds": len(vb), "n_utterances": est.n_utterances, "test": est.method, "se": est.se,
                         "detectable": est.detectable(POWER), "n_failed": est.n_failed})
    out = pd.DataFrame(rows)
    if out.empty:
        raise ValueError(f"ablation_rows: no variant of {variants} has rows in the compared conditions")
    out["p_holm"] = holm(out["p"].tolist())
    out["significant"] = out["p_holm"] < alpha
    return out


def _strict_mean(v: np.ndarray) -> float:
    return float(v.mean()) if len(v) and not np.isnan(v).any() else float("nan")


def _std(v: np.ndarray) -> float:
    return float(v.std(ddof=1)) if len(v) > 1 and not np.isnan(v).any() else float("nan")


def printed_delta(mean: float, full_mean: float, metric_name: str) -> float:
    """``Δ`` as printed: the difference of the two means rounded as the table prints them."""
    m = metric(metric_name)
    return round(round(mean * m.scale, m.decimals) - round(full_mean * m.scale, m.decimals), m.decimals)


def _n_text(rows: pd.DataFrame) -> str:
    """``5+5 seeds × 311 test utterances`` (ranges when rows differ)."""
    def span(values) -> str:
        v = sorted({int(x) for x in values if x == x})
        return "?" if not v else str(v[0]) if len(v) == 1 else f"{v[0]}–{v[-1]}"
    return f"{span(rows['n_seeds'])}+{span(rows['full_n_seeds'])} seeds × {span(rows['n_utterances'])} test utterances"


def ablation_table(rows: pd.DataFrame, metric_name: str, full: str, titles: Mapping[str, str] | None = None) -> Table:
    """Table of :func:`ablation_rows`: the full model first, then each variant; per setting its
    mean ± std over seeds and ``Δ`` (the difference of the printed means); ``†`` marks a
    Holm-adjusted paired p < 0.05. Best mean per column in bold."""
    m = metric(metric_name)
    s, digits = m.scale, m.decimals
    titles = titles or {}
    settings = [x for x in ("clean", "worst") if x in set(rows["setting"])]
    first = {x: rows[rows["setting"] == x].iloc[0] for x in settings}
    header = ["Variant"]
    for x in settings:
        r = first[x]
        where = "Clean" if x == "clean" else f"{titles.get(r['corruption'], r['corruption'])} @{int(r['severity'])}"
        header += [f"{where}\n{header_label(metric_name).replace(chr(10), ' ')}", "Δ"]

    def pm(mean: float, std: float, n: int) -> str:
        if np.isnan(mean):
            return "–"
        return fmt(mean * s, digits) + (f" ± {fmt(std * s, digits)}" if n > 1 else "")

    full_row: list[str] = [full]
    means: dict[str, list[float]] = {x: [] for x in settings}
    for x in settings:
        r = first[x]
        full_row += [pm(r["full_mean"], r["full_std"], int(r["full_n_seeds"])), "–"]
        means[x].append(r["full_mean"])
    body = []
    for variant in list(dict.fromkeys(rows["variant"])):
        line = [variant]
        for x in settings:
            r = rows[(rows["variant"] == variant) & (rows["setting"] == x)]
            if r.empty:
                line += ["–", "–"]
                means[x].append(float("nan"))
                continue
            r = r.iloc[0]
            mark = "†" if bool(r["significant"]) else ""
            delta = printed_delta(r["mean"], r["full_mean"], metric_name)
            line += [pm(r["mean"], r["std"], int(r["n_seeds"])), f"{'+' if delta > 0 else ''}{fmt(delta, digits)}{mark}"]
            means[x].append(r["mean"])
        body.append(line)
    all_rows = [full_row] + body
    masks = {x: best_mask(np.asarray(means[x]) * s, m.higher_is_better, digits) for x in settings}
    bold = [[False] + [b for x in settings for b in (masks[x][i], False)] for i in range(len(all_rows))]
    n_seeds = sorted({int(x) for x in rows["n_seeds"]})
    n_text = f"n = {n_seeds[0] if len(n_seeds) == 1 else f'{n_seeds[0]}–{n_seeds[-1]}'} seed(s)"
    tests = sorted(t for t in set(rows["test"]) if isinstance(t, str))
    detectable = rows["detectable"].dropna()
    sig = (f"† Holm-adjusted p < 0.05 of the t test of that difference ({'; '.join(tests)}; n = "
           f"{_n_text(rows)}).")
    if len(detectable):
        sig += (f" The smallest difference these seeds detect with 80% power: {fmt(detectable.median() * s, digits)} "
                f"points (median over rows; per row in the CSV); a Δ without † is not a tie.")
    note = (f"Mean ± std over seeds ({n_text}; one seed: mean only). Δ: variant − full model, the difference of "
            f"the two printed means (points). {sig} Best mean per column in bold; {m.display} {m.arrow}.")
    t = Table(header, all_rows, bold, blocks=[0], caption=f"Ablation of {full} ({m.display}).",
              label="tab:ablation", note=note)
    return t
