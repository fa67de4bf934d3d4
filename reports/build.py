"""Rebuild every figure and table of a run directory from its result store alone."""

from __future__ import annotations

import html
import json
from pathlib import Path

from harness.metrics import default_metric
from harness.store import ResultStore
from reports.ablation import ablation_figure
from reports.aggregate import curves
from reports.curves import robustness_figure
from reports.deployment import deployment_table
from reports.heatmap import drop_heatmap
from reports.latex import (
    ablation_rows,
    ablation_table,
    dataset_cards_table,
    main_results_table,
    robustness_table,
    severity_table,
)
from reports.robustness import mce_table, robustness_summary
from reports.scatter import clean_vs_robust
from reports.style import model_styles
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
    report_cfg = runs[-1]["config"].get("report", {}) if runs else {}
    full_model = report_cfg.get("full_model")  # None skips the ablation
    styles = model_styles(sorted(df["variant"].unique()))  # one colour per model in every figure
    ablated = _ablation_variants(df[df["status"] == "ok"], full_model)
    main_models = sorted(set(df["variant"]) - set(ablated))
    for dataset in sorted(summary["dataset"].unique()):
        # the main figure compares the full model with the baselines; its variants get their own
        written["figures"] += robustness_figure(summary, metric, figures / f"robustness_{dataset}", dataset,
                                                variants=main_models, styles=styles)
        if ablated:
            written["figures"] += robustness_figure(summary, metric, figures / f"robustness_ablation_{dataset}",
                                                    dataset, variants=[full_model, *ablated], styles=styles)
    md = robustness_markdown(summary, metric)
    (tables / "robustness.md").write_text(md)
    written["tables"].append(str(tables / "robustness.md"))

    def _write_pair(stem: str, pair: tuple[str, str]) -> str:
        tex, md_ = pair
        (tables / f"{stem}.tex").write_text(tex)
        (tables / f"{stem}.md").write_text(md_)
        written["tables"].extend([str(tables / f"{stem}.tex"), str(tables / f"{stem}.md")])
        return md_

    reference = report_cfg.get("reference")  # None skips mCE / effective robustness
    paper_md = []
    corrupted = sorted(set(df["corruption"]) - {"clean"})
    ok = df[df["status"] == "ok"]
    for dataset in sorted(df["dataset"].unique()):
        paper_md.append(_write_pair(f"main_{dataset}", main_results_table(ok, [metric], dataset=dataset)))
        if corrupted:
            rob = robustness_summary(summary[summary["dataset"] == dataset], metric, reference=reference)
            rob.to_csv(tables / f"robustness_summary_{dataset}.csv", index=False)
            if reference is not None:
                mce_table(rob).to_csv(tables / f"mce_{dataset}.csv", index=False)
            paper_md.append(_write_pair(f"robustness_{dataset}", robustness_table(rob, reference=reference)))
            worst = int(rob["worst_severity"].max())
            written["figures"] += drop_heatmap(rob, worst, figures / f"drop_heatmap_{dataset}")
            written["figures"] += clean_vs_robust(rob, figures / f"clean_vs_robust_{dataset}", metric=metric)
        if full_model is not None and full_model in set(df["variant"]):
            abl = ablation_rows(ok, metric, full=full_model, dataset=dataset, predictions=store.predictions,
                                variants=ablated or None, corruption=report_cfg.get("ablation_corruption"))
            abl.to_csv(tables / f"ablation_{dataset}.csv", index=False)
            paper_md.append(_write_pair(f"ablation_{dataset}", ablation_table(abl, metric, full_model)))
            written["figures"] += ablation_figure(abl, figures / f"ablation_{dataset}", metric=metric)
    if corrupted:
        paper_md.append(_write_pair("severities", severity_table(df)))
    cards = store.artifacts("dataset_card")
    if cards:
        paper_md.append(_write_pair("datasets", dataset_cards_table(list(cards.values()))))
    paper_md += _deployment_tables(store.artifacts("deployment"), df, _write_pair)
    for dataset in sorted(df["dataset"].unique()):  # drawn at run time from raw media (not in the store)
        gallery = figures / f"gallery_{dataset}.png"
        if gallery.exists():
            written["figures"] += [str(gallery), str(gallery.with_suffix(".pdf"))]
    store.to_csv(run_dir / "results.csv")
    report = [f"# mcer-bench report: {run_dir.name}", "",
              f"Headline metric: `{metric}`. Rows: {len(df)} ({int((df['status'] != 'ok').sum())} failed).", ""]
    for f in written["figures"]:
        if f.endswith(".png"):
            report.append(f"![{Path(f).stem}]({Path(f).relative_to(run_dir)})")
    failed = df[df["status"] != "ok"]
    if len(failed):
        report += ["## Failed cells", "", "| model | seed | corruption | severity | reason |", "|---|---|---|---|---|"]
        report += [f"| {r.variant} | {r.seed} | {r.corruption} | {r.severity} | {r.error} |" for r in failed.itertuples()]
        report.append("")
    report += ["", md, *paper_md, "## Provenance", ""]
    if runs:
        last = runs[-1]
        report += ["```json", json.dumps({"config_hash": last["config_hash"], **last["provenance"]}, indent=2), "```"]
    report += _training_nodes(store.dataframe("trainings"))
    (run_dir / "report.md").write_text("\n".join(report) + "\n")
    written["tables"].append(str(run_dir / "report.md"))
    _write_index(run_dir, written, runs[-1] if runs else None)
    written["tables"].append(str(run_dir / "index.html"))
    return written


def _training_nodes(trainings) -> list[str]:
    """report.md lines: where each training cell ran (the node as the worker described it:
    host name, and under Ray its address and node id), from the store's trainings table."""
    if trainings.empty:
        return []
    lines = ["", "### Where each training cell ran", "",
             "| model | dataset | condition | seed | status | node | device | wall time (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in trainings.sort_values(["variant", "dataset", "train_condition", "seed"]).itertuples():
        where = getattr(r, "node", None)  # absent from stores written before nodes were recorded
        lines.append(f"| {r.variant} | {r.dataset} | {r.train_condition} | {r.seed} | {r.status} | "
                     f"{where if isinstance(where, str) and where else 'not recorded'} | {r.device} | "
                     f"{r.wall_time_s:.1f} |")
    return lines


def _ablation_variants(ok, full_model: str | None) -> list[str]:
    """Labels of the other configurations of the full model's registered model (e.g. the
    ``mcer-ablation`` set): what the ablation compares, rather than the sweep's baselines."""
    if full_model is None or full_model not in set(ok["variant"]):
        return []
    family = set(ok.loc[ok["variant"] == full_model, "model"])
    return sorted(set(ok.loc[ok["model"].isin(family), "variant"]) - {full_model})


def _deployment_tables(records: dict[str, dict], df, write_pair) -> list[str]:
    """``tables/deployment_<dataset>.{tex,md}``: one row per model label (in the order of the
    result rows), from the ``deployment`` artifacts a sweep stored; returns the Markdown."""
    out = []
    order = list(dict.fromkeys(df["variant"]))
    for dataset in sorted({r.get("dataset") for r in records.values()} - {None}):
        recs = [r for r in records.values() if r.get("dataset") == dataset]
        recs.sort(key=lambda r: (order.index(r["variant"]) if r["variant"] in order else len(order), r["variant"],
                                 str(r.get("device"))))
        devices = {str(r.get("device")) for r in recs}
        names = [r["variant"] if len(devices) == 1 else f"{r['variant']} ({r.get('device')})" for r in recs]
        out.append(write_pair(f"deployment_{dataset}", deployment_table(recs, names)))
    return out


def _write_index(run_dir: Path, written: dict[str, list[str]], run: dict | None) -> None:
    """``index.html``: every figure inline, every table linked, the config and provenance."""
    rel = [Path(p).relative_to(run_dir) for p in written["figures"] + written["tables"]]
    parts = [f"<!doctype html><meta charset='utf-8'><title>mcer-bench: {html.escape(run_dir.name)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}"
             "pre{background:#f6f6f6;padding:8px;overflow:auto}</style>",
             f"<h1>mcer-bench report: {html.escape(run_dir.name)}</h1>", "<p><a href='report.md'>report.md</a> · "
             "<a href='results.csv'>results.csv</a> · <a href='results.sqlite'>results.sqlite</a></p>", "<h2>Figures</h2>"]
    for p in rel:
        if p.suffix == ".png":
            pdf = p.with_suffix(".pdf")
            parts.append(f"<figure><img src='{p}' alt='{p.stem}'><figcaption>{p.stem} "
                         f"(<a href='{pdf}'>PDF</a>)</figcaption></figure>")
    parts.append("<h2>Tables</h2><ul>")
    parts += [f"<li><a href='{p}'>{p}</a></li>" for p in rel if p.suffix in (".md", ".tex", ".csv") and p.name != "report.md"]
    parts.append("</ul>")
    if run is not None:
        parts += ["<h2>Configuration and provenance</h2>",
                  f"<pre>{html.escape(json.dumps(run['config'], indent=2))}</pre>",
                  f"<pre>{html.escape(json.dumps({'config_hash': run['config_hash'], **run['provenance']}, indent=2))}</pre>"]
    (run_dir / "index.html").write_text("\n".join(parts) + "\n")
