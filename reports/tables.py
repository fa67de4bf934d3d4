"""Markdown tables from curve summaries (best value per column in bold)."""

from __future__ import annotations

import math

import pandas as pd

from harness.metrics import metric as metric_info


def _fmt(mean: float, std: float, failed: int, scale: float) -> str:
    if math.isnan(mean):
        return f"failed ({failed})" if failed else "–"
    s = f"{mean * scale:.1f} ± {std * scale:.1f}"
    return s + (f" ({failed} failed)" if failed else "")


def robustness_markdown(summary: pd.DataFrame, metric: str) -> str:
    """One table per (dataset, corruption): models as rows, severities as columns,
    mean ± std across seeds (×100 for fractions), best mean per column in bold."""
    m_info = metric_info(metric)
    scale = m_info.scale
    better_high = m_info.higher_is_better
    out = []
    data = summary[summary["defense"] == "none"]
    for (dataset, corr), g in data.groupby(["dataset", "corruption"], sort=True):
        sev = sorted(g["severity"].unique())
        params = {s: g[g["severity"] == s]["parameter_value"].iloc[0] for s in sev}
        head = [f"{s}" + (f" ({params[s]})" if params[s] else " (clean)" if s == 0 else "") for s in sev]
        lines = [f"### {dataset} — {corr} — {m_info.label()}", "",
                 "| model | " + " | ".join(head) + " |", "|---|" + "---:|" * len(sev)]
        best = {}
        for s in sev:
            col = g[g["severity"] == s]["mean"].dropna()
            best[s] = (col.max() if better_high else col.min()) if len(col) else None
        for model, m in g.groupby("variant", sort=True):
            cells = []
            for s in sev:
                r = m[m["severity"] == s]
                if r.empty:
                    cells.append("–")
                    continue
                r = r.iloc[0]
                txt = _fmt(r["mean"], r["std"], int(r["failed"]), scale)
                cells.append(f"**{txt}**" if best[s] is not None and r["mean"] == best[s] else txt)
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        n_seeds = int(g["n_seeds"].max())
        lines += ["", f"Mean ± std over {n_seeds} seed(s); best per column in bold.", ""]
        out.append("\n".join(lines))
    return "\n".join(out)
