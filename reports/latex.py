"""Paper-ready tables: LaTeX (booktabs) with a Markdown twin of the same rows.

Every builder returns ``(latex, markdown)``. Fractions are printed ×100 (``mae`` and ``corr``
as they are), ``mean ± std`` across seeds, best value per column in bold (per block, where a
table has blocks separated by ``\\midrule``). LaTeX needs ``\\usepackage{booktabs}``.

Builders: :func:`main_results_table` (clean scores), :func:`robustness_table` (AURC, CE, drop at
the worst severity from :mod:`reports.robustness`), :func:`ablation_rows` +
:func:`ablation_table` (variants vs the full model with paired tests and Holm's correction),
:func:`severity_table` (corruption parameter per severity, from the stored rows),
:func:`dataset_cards_table`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.metrics import as_higher_better, higher_is_better, metric
from reports.aggregate import CLEAN, bootstrap_ci
from reports.stats import concat_records, holm, paired_bootstrap, seed_summary

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: Any) -> str:
    """Escape LaTeX special characters in ``text``."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


_UNICODE = {"±": r"$\pm$", "†": r"$^\dagger$", "–": "--", "−": "-", "↓": r"$\downarrow$", "∞": r"$\infty$",
            "Δ": r"$\Delta$", "<": r"$<$", ">": r"$>$"}


def _tex(text: Any) -> str:
    """Escaped LaTeX with the table's Unicode symbols as math."""
    return "".join(_UNICODE.get(ch, ch) for ch in escape(text))


@dataclass
class Table:
    """Cells as plain text (``±`` is converted for LaTeX); ``bold[i][j]`` marks best cells;
    ``blocks`` are row indices after which a ``\\midrule`` is drawn."""

    header: list[str]
    rows: list[list[str]]
    bold: list[list[bool]] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)
    align: str = ""
    caption: str = ""
    label: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        for i, r in enumerate(self.rows):
            if len(r) != len(self.header):
                raise ValueError(f"table row {i} has {len(r)} cells, header has {len(self.header)}: {r}")
        if not self.bold:
            self.bold = [[False] * len(self.header) for _ in self.rows]
        if not self.align:
            self.align = "l" + "r" * (len(self.header) - 1)
        if len(self.align) != len(self.header):
            raise ValueError(f"align {self.align!r} has {len(self.align)} columns, header has {len(self.header)}")

    def latex(self) -> str:
        def cell(text: str, b: bool) -> str:
            t = _tex(text)
            return rf"\textbf{{{t}}}" if b else t

        lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{self.align}}}", r"\toprule",
                 " & ".join(_tex(h) for h in self.header) + r" \\", r"\midrule"]
        for i, (r, b) in enumerate(zip(self.rows, self.bold)):
            lines.append(" & ".join(cell(c, x) for c, x in zip(r, b)) + r" \\")
            if i in self.blocks and i != len(self.rows) - 1:
                lines.append(r"\midrule")
        lines += [r"\bottomrule", r"\end{tabular}"]
        caption = self.caption + (" " + self.note if self.note else "")
        if caption:
            lines.append(rf"\caption{{{_tex(caption)}}}")
        if self.label:
            lines.append(rf"\label{{{self.label}}}")
        lines.append(r"\end{table}")
        return "\n".join(lines) + "\n"

    def markdown(self) -> str:
        def cell(text: str, b: bool) -> str:
            t = str(text).replace("|", r"\|")
            return f"**{t}**" if b and t else t

        aligns = ["---" if a == "l" else "---:" if a == "r" else ":---:" for a in self.align]
        lines = []
        if self.caption:
            lines += [f"**{self.caption}**", ""]
        lines += ["| " + " | ".join(self.header) + " |", "|" + "|".join(aligns) + "|"]
        lines += ["| " + " | ".join(cell(c, x) for c, x in zip(r, b)) + " |" for r, b in zip(self.rows, self.bold)]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"

    def both(self) -> tuple[str, str]:
        return self.latex(), self.markdown()


def _pm(mean: float, std: float, scale: float, digits: int) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def best_mask(values: Sequence[float], higher: bool, digits: int | None = None) -> list[bool]:
    """True where ``values`` equal the best (ties all bold; NaN never); compare at printed precision."""
    v = np.asarray(values, dtype=float)
    if digits is not None:
        v = np.round(v, digits)
    if np.isnan(v).all():
        return [False] * len(v)
    best = np.nanmax(v) if higher else np.nanmin(v)
    return [bool(x == best) for x in v]


def _ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    d = df.copy()
    d["defense"] = d["defense"].fillna("none")
    return d[d["status"] == "ok"]


def _one_dataset(df: pd.DataFrame, dataset: str | None, who: str) -> tuple[pd.DataFrame, str]:
    names = sorted(df["dataset"].unique())
    if dataset is None:
        if len(names) != 1:
            raise ValueError(f"{who}: the results hold datasets {names}; pass dataset=")
        dataset = names[0]
    elif dataset not in names:
        raise ValueError(f"{who}: dataset {dataset!r} not in the results; available {names}")
    return df[df["dataset"] == dataset], dataset


# ------------------------------------------------------------------------------------ main results

def main_results_table(df: pd.DataFrame, metrics: Sequence[str], dataset: str | None = None,
                       digits: int = 1) -> tuple[str, str]:
    """Clean test scores: one row per model variant, one column per metric, mean ± std over
    seeds, best mean per column in bold. ``df`` is ``ResultStore.dataframe()``."""
    for m in metrics:
        if f"metric_{m}" not in df.columns:
            raise ValueError(f"main_results_table: metric {m!r} not in the results; available "
                             f"{sorted(c[7:] for c in df.columns if c.startswith('metric_'))}")
    d = _ok_rows(df)
    d = d[(d["corruption"] == CLEAN) & (d["defense"] == "none")]
    d, dataset = _one_dataset(d, dataset, "main_results_table")
    if d.empty:
        raise ValueError(f"main_results_table: no successful clean rows for dataset {dataset!r}")
    variants = sorted(d["variant"].unique())
    stats = {(v, m): seed_summary(d[d["variant"] == v][f"metric_{m}"].to_numpy(dtype=float))
             for v in variants for m in metrics}
    rows = [[v] + [_pm(stats[v, m]["mean"], stats[v, m]["std"], metric(m).scale, digits) for m in metrics]
            for v in variants]
    cols = [best_mask([stats[v, m]["mean"] * metric(m).scale for v in variants], higher_is_better(m), digits)
            for m in metrics]
    bold = [[False] + [cols[j][i] for j in range(len(metrics))] for i in range(len(variants))]
    header = ["Model"] + [metric(m).label() for m in metrics]
    n = int(d.groupby("variant")["seed"].nunique().max())
    t = Table(header, rows, bold, caption=f"Clean test results on {dataset}.",
              label=f"tab:main-{dataset}", note=f"Mean ± std over {n} seed(s); best in bold.")
    return t.both()


# ------------------------------------------------------------------------------ robustness summary

def robustness_table(rob: pd.DataFrame, dataset: str | None = None, reference: str | None = None,
                     digits: int = 1) -> tuple[str, str]:
    """Rows model × corruption (blocks per corruption): clean score, AURC, CE (when
    ``reference`` was used), relative drop at the worst severity present; from
    :func:`reports.robustness.robustness_summary`. Best per block in bold (drop and CE: lowest)."""
    if rob.empty:
        raise ValueError("robustness_table: empty robustness summary")
    rob, dataset = _one_dataset(rob, dataset, "robustness_table")
    if "worst_severity" not in rob.columns or rob["worst_severity"].isna().all():
        raise ValueError("robustness_table: the summary has no severity > 0 (no rel_drop_<s> column)")
    worst_severity = int(rob["worst_severity"].max())
    worst = f"rel_drop_{worst_severity}"
    has_ce = "ce" in rob.columns
    cols = [("m0", "Clean (%)", True, 100.0), ("aurc", "AURC (%)", True, 100.0)]
    if has_ce:
        cols.append(("ce", "CE (%)↓", False, 100.0))
    cols.append((worst, f"Drop@{worst_severity} (%)↓", False, 100.0))
    rows, bold, blocks = [], [], []
    for corr, g in rob.groupby("corruption", sort=True):
        g = g.sort_values("variant")
        masks = [best_mask(g[c].to_numpy(dtype=float) * s, hi, digits) for c, _, hi, s in cols]
        for i, (_, r) in enumerate(g.iterrows()):
            rows.append([r["variant"], corr] + [("–" if math.isnan(r[c]) else f"{r[c] * s:.{digits}f}")
                                                 for c, _, _, s in cols])
            bold.append([False, False] + [m[i] for m in masks])
        blocks.append(len(rows) - 1)
    note = "AURC: area under the severity curve / number of intervals; Drop: (m0 − m_s)/m0."
    if has_ce:
        note += f" CE: corruption error relative to {reference or 'the reference model'} (= 100)."
    t = Table(["Model", "Corruption"] + [h for _, h, _, _ in cols], rows, bold, blocks, align="ll" + "r" * len(cols),
              caption=f"Robustness summary on {dataset}.", label=f"tab:robustness-{dataset}", note=note)
    return t.both()


# -------------------------------------------------------------------------------------- ablation

_PAIR_KEYS = ["dataset", "seed", "corruption", "severity", "defense", "split"]


def _pooled_record(cells: pd.DataFrame, predictions: Callable[[str], Mapping[str, Any] | None]) -> dict[str, Any] | None:
    recs, prefixes = [], []
    for _, r in cells.iterrows():
        rec = predictions(r["cell_key"])
        if rec is None:
            return None
        recs.append(rec)
        prefixes.append(str(r["seed"]))
    return concat_records(recs, prefixes) if recs else None


def ablation_rows(df: pd.DataFrame, metric: str, full: str, variants: Sequence[str] | None = None,
                  corruption: str | None = None, dataset: str | None = None,
                  predictions: Callable[[str], Mapping[str, Any] | None] | None = None,
                  n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """Each ablation variant against the ``full`` model, clean and at the worst condition.

    The worst condition is the highest severity of ``corruption``; with ``corruption=None`` it is
    the (corruption, highest severity) where the full model's mean score is lowest. For each
    setting and variant: means ± std over seeds, ``delta = variant − full`` (metric units) with
    a CI and p-value. With ``predictions`` (e.g. ``store.predictions``) the test is a paired
    bootstrap over utterances, pooled over the seeds both models ran (pairs matched on
    dataset, seed, corruption, severity, defense, split); without it the CI is a bootstrap over
    per-seed differences and ``p`` is NaN. ``p_holm`` is Holm-adjusted over all rows;
    ``significant`` is ``p_holm < alpha``.

    Returns columns: variant, setting ("clean"/"worst"), condition, mean, std, full_mean,
    full_std, delta, ci_low, ci_high, p, p_holm, significant, n_seeds.
    """
    col = f"metric_{metric}"
    if col not in df.columns:
        raise ValueError(f"ablation_rows: metric {metric!r} not in the results")
    d = _ok_rows(df)
    d = d[d["defense"] == "none"]
    d, dataset = _one_dataset(d, dataset, "ablation_rows")
    if full not in set(d["variant"]):
        raise ValueError(f"ablation_rows: full model {full!r} not among variants {sorted(d['variant'].unique())}")
    variants = [v for v in (variants or sorted(d["variant"].unique())) if v != full]
    unknown = sorted(set(variants) - set(d["variant"]))
    if unknown:
        raise ValueError(f"ablation_rows: variants {unknown} not in the results; available {sorted(d['variant'].unique())}")
    corrupted = d[(d["corruption"] != CLEAN) & (d["variant"] == full)]
    if corruption is not None:
        corrupted = corrupted[corrupted["corruption"] == corruption]
        if corrupted.empty:
            raise ValueError(f"ablation_rows: no rows of the full model under corruption {corruption!r}")
    conditions = [("clean", CLEAN, 0)]
    if not corrupted.empty:
        top = corrupted[corrupted["severity"] == corrupted.groupby("corruption")["severity"].transform("max")]
        means = top.groupby(["corruption", "severity"])[col].mean().map(lambda v: as_higher_better(metric, v))
        worst_c, worst_s = means.idxmin()
        conditions.append(("worst", worst_c, int(worst_s)))
    rows = []
    for variant in variants:
        for setting, corr, sev in conditions:
            sel = d[(d["corruption"] == corr) & (d["severity"] == sev)]
            a, b = sel[sel["variant"] == variant], sel[sel["variant"] == full]
            if a.empty:
                continue
            sa, sb = seed_summary(a[col].to_numpy(float)), seed_summary(b[col].to_numpy(float))
            merged = a.merge(b, on=_PAIR_KEYS, suffixes=("_a", "_b"))
            row = {"variant": variant, "setting": setting, "condition": corr if sev == 0 else f"{corr}@{sev}",
                   "mean": sa["mean"], "std": sa["std"], "full_mean": sb["mean"], "full_std": sb["std"],
                   "delta": sa["mean"] - sb["mean"], "ci_low": float("nan"), "ci_high": float("nan"),
                   "p": float("nan"), "n_seeds": int(len(merged))}
            rec_a = rec_b = None
            if predictions is not None and not merged.empty:
                rec_a = _pooled_record(merged.rename(columns={"cell_key_a": "cell_key"}), predictions)
                rec_b = _pooled_record(merged.rename(columns={"cell_key_b": "cell_key"}), predictions)
            if rec_a is not None and rec_b is not None:
                res = paired_bootstrap(rec_a, rec_b, metric, n_boot=n_boot, seed=seed)
                row.update(delta=res["effect"], ci_low=res["ci_low"], ci_high=res["ci_high"], p=res["p"])
            elif len(merged):
                diff = (merged[f"{col}_a"] - merged[f"{col}_b"]).to_numpy(float)
                row["ci_low"], row["ci_high"] = bootstrap_ci(diff, n_boot=n_boot, seed=seed)
            rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        raise ValueError(f"ablation_rows: no variant of {variants} has rows in the compared conditions")
    out["p_holm"] = holm(out["p"].tolist())
    out["significant"] = out["p_holm"] < alpha
    return out


def ablation_table(rows: pd.DataFrame, metric_name: str, full: str, digits: int = 1) -> tuple[str, str]:
    """Table of :func:`ablation_rows`: per variant the clean and worst-condition scores with
    ``Δ`` to the full model; ``†`` marks Holm-adjusted paired significance (p < 0.05). The full
    model is the first row; best score per column in bold."""
    m = metric(metric_name)
    s = m.scale
    settings = [x for x in ("clean", "worst") if x in set(rows["setting"])]
    cond = {x: rows[rows["setting"] == x]["condition"].iloc[0] for x in settings}
    header = ["Variant"]
    for x in settings:
        header += [f"{cond[x]}: {m.label()}", "Δ"]
    full_row: list[str] = [full]
    means: dict[str, list[float]] = {x: [] for x in settings}
    body = []
    for x in settings:
        r = rows[rows["setting"] == x].iloc[0]
        full_row += [_pm(r["full_mean"], r["full_std"], s, digits), "–"]
        means[x].append(r["full_mean"])
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
            line += [_pm(r["mean"], r["std"], s, digits), f"{r['delta'] * s:+.{digits}f}{mark}"]
            means[x].append(r["mean"])
        body.append(line)
    all_rows = [full_row] + body
    masks = {x: best_mask(np.asarray(means[x]) * s, m.higher_is_better, digits) for x in settings}
    bold = [[False] + [b for x in settings for b in (masks[x][i], False)] for i in range(len(all_rows))]
    t = Table(header, all_rows, bold, blocks=[0], caption=f"Ablation of {full} ({m.display}).",
              label="tab:ablation",
              note="Δ: variant − full model; † paired bootstrap over utterances, Holm-adjusted p < 0.05.")
    return t.both()


# ------------------------------------------------------------------------------- severity tables

def severity_table(df: pd.DataFrame) -> tuple[str, str]:
    """Corruption, physical parameter and its value at each severity that ran, from the stored
    rows alone (each row carries ``parameter`` and ``parameter_value``). Corruptions are named
    as registered (``corruption_options["name"]``), once each even when several entries used
    them; severities no entry ran show "–"; severity 0 is the clean cell."""
    need = {"corruption", "corruption_options", "severity", "parameter", "parameter_value"}
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"severity_table: the rows lack columns {sorted(missing)} (pass ResultStore.dataframe())")
    rows_in = df[df["corruption"] != CLEAN]
    if rows_in.empty:
        raise ValueError("severity_table: no corrupted cells in the results")
    names = [o.get("name", c) if isinstance(o, dict) else c for c, o in zip(rows_in["corruption"],
                                                                              rows_in["corruption_options"])]
    rows_in = rows_in.assign(registered=names)
    severities = sorted(int(x) for x in rows_in["severity"].unique())
    rows = []
    for name, g in rows_in.groupby("registered", sort=True):
        values = {int(r.severity): str(r.parameter_value) for r in g.itertuples() if isinstance(r.parameter_value, str)}
        parameter = next((str(x) for x in g["parameter"] if isinstance(x, str)), "–")
        rows.append([str(name), parameter, "clean"] + [values.get(sev, "–") for sev in severities])
    header = ["Corruption", "Parameter", "0"] + [str(sev) for sev in severities]
    t = Table(header, rows, align="ll" + "r" * (len(header) - 2), caption="Severity levels of the corruptions.",
              label="tab:severities", note="Severity 0 is the clean input; values as stored with the results.")
    return t.both()


# ------------------------------------------------------------------------------------ dataset cards

def dataset_cards_table(summaries: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """One row per dataset from ``BenchDataset.summary()``: task, classes, speakers, dialogues and
    utterances per split, modalities with feature dimensions."""
    rows = []
    for i, s in enumerate(summaries):
        for key in ("name", "spec", "splits"):
            if key not in s:
                raise ValueError(f"dataset_cards_table: summary {i} lacks key {key!r} (pass BenchDataset.summary())")
        spec, splits = s["spec"], s["splits"]
        task = spec.get("task", "?")
        classes = str(spec.get("num_classes") or "–") if task == "classification" else "–"
        counts = [f"{splits.get(x, {}).get('dialogues', 0)} / {splits.get(x, {}).get('utterances', 0)}"
                  for x in ("train", "valid", "test")]
        mods = ", ".join(f"{m} ({d})" for m, d in spec.get("dims", {}).items())
        rows.append([s["name"], task, classes, str(spec.get("num_speakers") or "–")] + counts + [mods])
    if not rows:
        raise ValueError("dataset_cards_table: no dataset summaries given")
    header = ["Dataset", "Task", "Classes", "Speakers", "Train", "Valid", "Test", "Modalities (dim)"]
    t = Table(header, rows, align="llrrrrrl", caption="Datasets.", label="tab:datasets",
              note="Split sizes as dialogues / utterances.")
    return t.both()
