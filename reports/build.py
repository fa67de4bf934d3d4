"""Rebuild every figure and table of a run directory from its result store alone."""

from __future__ import annotations

import json
from pathlib import Path

from harness.metrics import default_metric
from harness.store import ResultStore
from reports.aggregate import curves
from reports.curves import robustness_figure
from reports.tables import robustness_markdown


def build_report(run_dir: str | Path, metric: str | None = None) -> dict[str, list[str]]:
    """Write ``figures/``, ``tables/`` and ``report.md`` under ``run_dir``; return the paths."""
    run_dir = Path(run_dir)
    db = run_dir / "results.sqlite"
    if not db.is_file():
        raise FileNotFoundError(f"{run_dir} has no results.sqlite: is it a run directory made by 'mcer-bench run'?")
    store = ResultStore(db)
    df = store.dataframe()
    if df.empty:
        raise ValueError(f"{db} holds no result rows yet")
    runs = store.runs()
    if metric is None:
        configured = runs[-1]["config"].get("report", {}).get("metric") if runs else None
        metric = configured or default_metric("classification" if "metric_wf1" in df.columns else "regression")
    figures, tables = run_dir / "figures", run_dir / "tables"
    figures.mkdir(exist_ok=True)
    tables.mkdir(exist_ok=True)
    summary = curves(df, metric)
    summary.to_csv(tables / "robustness_curves.csv", index=False)
    written: dict[str, list[str]] = {"figures": [], "tables": [str(tables / "robustness_curves.csv")]}
    for dataset in sorted(summary["dataset"].unique()):
        written["figures"] += robustness_figure(summary, metric, figures / f"robustness_{dataset}", dataset)
    md = robustness_markdown(summary, metric)
    (tables / "robustness.md").write_text(md)
    written["tables"].append(str(tables / "robustness.md"))
    store.to_csv(run_dir / "results.csv")
    report = [f"# mcer-bench report: {run_dir.name}", "",
              f"Headline metric: `{metric}`. Rows: {len(df)} ({int((df['status'] != 'ok').sum())} failed).", ""]
    for f in written["figures"]:
        if f.endswith(".png"):
            report.append(f"![robustness curves]({Path(f).relative_to(run_dir)})")
    report += ["", md, "## Provenance", ""]
    if runs:
        last = runs[-1]
        report += ["```json", json.dumps({"config_hash": last["config_hash"], **last["provenance"]}, indent=2), "```"]
    (run_dir / "report.md").write_text("\n".join(report) + "\n")
    written["tables"].append(str(run_dir / "report.md"))
    return written
