"""Rebuild every figure and table of a run directory from its result store alone.

:func:`build_report` writes, under the run directory: ``figures/`` (PNG + PDF), ``tables/``
(LaTeX + Markdown, and CSV of the summaries), ``results.csv``, ``results.json``
(:mod:`reports.results_json`), ``report.md`` and ``index.html`` (:mod:`reports.html`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.metrics import metric as metric_info
from harness.store import CLEAN, ResultStore
from reports.ablation import ablation_figure
from reports.ablation_table import ablation_rows, ablation_table
from reports.aggregate import curves, model_groups
from reports.comparisons import comparison_rows, comparisons_table
from reports.curves import ablation_curves, robustness_figure
from reports.deployment import deployment_table
from reports.heatmap import drop_heatmap
from reports.html import write_index
from reports.info_tables import dataset_cards_table, severity_table
from reports.intervals import N_BOOT, describe_n
from reports.latex import Table
from reports.learning import histories, learning_curves
from reports.main_table import main_results_table, per_class_table
from reports.metric_sets import headline as dataset_headline
from reports.metric_sets import metric_set, per_class_metrics, task_of, wants_per_class
from reports.results_json import write_results_json
from reports.robustness import mce_table, robustness_summary
from reports.robustness_tables import robustness_metric_table, robustness_overview_table
from reports.scatter import clean_vs_robust
from reports.style import corruption_titles, model_styles


@dataclass
class Item:
    """One figure or table of the report, with what index.html and report.md say about it."""

    kind: str  # "figure" or "table"
    title: str
    caption: str
    path: str = ""  # figure: the PNG (a PDF beside it); table: the .tex (a .md beside it)
    table: Table | None = None


@dataclass
class Section:
    title: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Report:
    run_dir: Path
    sections: list[Section] = field(default_factory=list)
    ablation_corruption: str | None = None
    written: dict[str, list[str]] = field(default_factory=lambda: {"figures": [], "tables": []})

    def figure(self, section: Section, paths: list[str], title: str, caption: str) -> None:
        self.written["figures"] += paths
        section.items.append(Item("figure", title, caption, path=paths[0]))

    def table(self, section: Section, stem: str, table: Table | tuple[str, str], title: str, caption: str = "") -> None:
        tables = self.run_dir / "tables"
        tex, md = table.both() if isinstance(table, Table) else table
        (tables / f"{stem}.tex").write_text(tex)
        (tables / f"{stem}.md").write_text(md)
        self.written["tables"] += [str(tables / f"{stem}.tex"), str(tables / f"{stem}.md")]
        section.items.append(Item("table", title, caption, path=str(tables / f"{stem}.tex"),
                                  table=table if isinstance(table, Table) else None))


def _report_config(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(runs[-1]["config"].get("report", {})) if runs else {}


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


def _determinism_lines(df: pd.DataFrame) -> list[str]:
    """report.md lines: a warning when some result rows were computed with an op that has no
    deterministic kernel (their ``deterministic`` provenance is false), so a rerun with the same
    seeds may differ in the last digits; nothing when every row reproduces (or none recorded it)."""
    if "deterministic" not in df.columns:
        return []
    flagged = df[df["deterministic"] == 0]  # NaN (not recorded) compares unequal
    if flagged.empty:
        return []
    models = ", ".join(sorted(flagged["variant"].unique()))
    return [f"**Not bit-reproducible:** {len(flagged)} of {len(df)} result rows ({models}) ran an op without a "
            f"deterministic kernel on {', '.join(sorted(flagged['device'].unique()))}; the same seeds may give "
            f"slightly different numbers on a rerun.", ""]


def _tuning_lines(choices: dict[str, dict[str, Any]]) -> list[str]:
    """report.md lines: each tuned model's chosen configuration, its validation score and the
    budget it was chosen with (the ``tuning`` artifacts of a sweep with a ``[tune]`` section)."""
    if not choices:
        return []
    lines = ["", "## Tuning: the configurations chosen on the validation split", "",
             "| model | dataset | chosen | validation | trial | budget | sampler (seed) |", "|---|---|---|---:|---:|---:|---|"]
    for c in sorted(choices.values(), key=lambda c: (c["dataset"], c["variant"])):
        chosen = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in sorted({**c["options"], **c["train"]}.items()))
        lines.append(f"| {c['variant']} | {c['dataset']} | {chosen} | {c['metric']} {c['value']:.4f} | {c['trial']} | "
                     f"{c['completed']} of {c['budget']} trials | {c['sampler']} ({c['seed']}) |")
    lines += ["", "Every tuned model had the same budget of trials from its own search space; the chosen "
                  "configuration then trained with every seed of the sweep.", ""]
    return lines


def _ablation_variants(ok: pd.DataFrame, full_model: str | None) -> list[str]:
    """Labels of the other configurations of the full model's registered model (e.g. the
    ``mcer-ablation`` set): what the ablation compares, rather than the sweep's baselines."""
    if full_model is None or full_model not in set(ok["variant"]):
        return []
    family = set(ok.loc[ok["variant"] == full_model, "model"])
    return sorted(set(ok.loc[ok["model"].isin(family), "variant"]) - {full_model})


def _headline(requested: str | None, task: str, declared: str | None) -> str:
    """The requested metric when it fits the dataset's task, else the dataset's default."""
    if requested is not None:
        info = metric_info(requested)
        if info.task == task:
            return requested
    return dataset_headline(task, declared)


def build_report(run_dir: str | Path, metric: str | None = None, n_boot: int = N_BOOT,
                 report_config: dict[str, Any] | None = None, title: str | None = None) -> dict[str, list[str]]:
    """Write the report of ``run_dir`` (see the module doc) from ``run_dir/results.sqlite``;
    return ``{"figures": [...], "tables": [...]}`` (paths). ``metric`` overrides the config's
    ``[report] metric`` (the headline of figures and robustness tables); ``report_config``
    replaces the stored ``[report]`` section (``mcer-bench compare`` passes the first run's)."""
    run_dir = Path(run_dir)
    db = run_dir / "results.sqlite"
    if not db.is_file():
        raise FileNotFoundError(f"{run_dir} has no results.sqlite: is it a run directory made by 'mcer-bench run'?")
    store = ResultStore(db, read_only=True)
    df = store.dataframe()
    if df.empty:
        raise ValueError(f"{db} holds no result rows yet")
    runs = store.runs()
    cfg = report_config if report_config is not None else _report_config(runs)
    requested = metric or cfg.get("metric")
    if requested is not None:
        try:
            metric_info(requested)
        except KeyError as exc:  # a ValueError, so that the CLI prints one line and exits 2
            raise ValueError(f"report metric: {exc.args[0]}") from None
    full_model, reference = cfg.get("full_model"), cfg.get("reference")
    (run_dir / "figures").mkdir(exist_ok=True)
    (run_dir / "tables").mkdir(exist_ok=True)
    rep = Report(run_dir, ablation_corruption=cfg.get("ablation_corruption"))
    styles = model_styles(df["variant"].unique())  # fixed per label: the same in every figure and run
    titles = corruption_titles(df)
    cards = store.artifacts("dataset_card")
    trainings = store.dataframe("trainings")
    tasks = {d: task_of(df[df["dataset"] == d]) for d in sorted(df["dataset"].unique())}
    if requested is not None and metric_info(requested).task not in set(tasks.values()):
        raise ValueError(f"report metric {requested!r} is a {metric_info(requested).task} metric, but the results hold "
                         f"only {sorted(set(tasks.values()))} datasets ({', '.join(tasks)})")
    json_datasets: dict[str, dict[str, Any]] = {}
    for dataset in sorted(df["dataset"].unique()):
        d = df[df["dataset"] == dataset]
        task = tasks[dataset]
        card_name = (cards.get(dataset) or {}).get("name")
        declared = ((cards.get(dataset) or {}).get("spec") or {}).get("metric_set")
        metrics = metric_set(task, [dataset, card_name], declared)
        headline = _headline(requested, task, declared)
        json_datasets[dataset] = {"task": task, "metrics": list(metrics), "headline": headline}
        _dataset_sections(rep, store, d, dataset, task, metrics, headline, full_model, reference, styles, titles,
                          trainings, cards.get(dataset) or {}, n_boot)
    _info_sections(rep, store, df)
    store.to_csv(run_dir / "results.csv")
    write_results_json(run_dir / "results.json", df, runs, json_datasets, predictions=store.predictions,
                       n_boot=n_boot)
    rep.written["tables"] += [str(run_dir / "results.csv"), str(run_dir / "results.json")]
    _write_markdown(rep, df, runs, title, _training_nodes(trainings) + _tuning_lines(store.artifacts("tuning")))
    write_index(run_dir, rep.sections, runs, df, title=title)
    rep.written["tables"] += [str(run_dir / "report.md"), str(run_dir / "index.html")]
    return rep.written


def _dataset_sections(rep: Report, store: ResultStore, d: pd.DataFrame, dataset: str, task: str,
                      metrics: tuple[str, ...], headline: str, full_model: str | None, reference: str | None,
                      styles: dict, titles: dict[str, str], trainings: pd.DataFrame, card: dict[str, Any],
                      n_boot: int) -> None:
    figures = rep.run_dir / "figures"
    ok = d[d["status"] == "ok"]
    ablated = _ablation_variants(ok, full_model)
    groups = model_groups(sorted(d["variant"].unique()), full_model, ablated)
    main_models = groups[0]
    h = metric_info(headline)
    sec = Section(f"{dataset}: main results")
    rep.sections.append(sec)
    main = main_results_table(d, metrics, dataset, store.predictions, full_model, ablated, n_boot=n_boot)
    rep.table(sec, f"main_{dataset}", main, f"Clean test results on {dataset}",
              "Every metric of the dataset's conventional set on the clean test split.")
    if wants_per_class(task, [dataset, card.get("name")]):
        pcm = [m for m in per_class_metrics(d.columns) if d[f"metric_{m}"].notna().any()]
        names = (card.get("spec") or {}).get("class_names") or []  # the dataset's class order when known
        pcm.sort(key=lambda m: names.index(m[3:]) if m[3:] in names else len(names))
        if pcm:
            rep.table(sec, f"per_class_{dataset}", per_class_table(d, pcm, dataset, full_model, ablated),
                      f"Per-class F1 on {dataset}")
    corrupted = sorted(set(d["corruption"]) - {CLEAN})
    if corrupted:
        summary = curves(d, headline, store.predictions, n_boot)
        summary.to_csv(rep.run_dir / "tables" / f"robustness_curves_{dataset}.csv", index=False)
        rep.written["tables"].append(str(rep.run_dir / "tables" / f"robustness_curves_{dataset}.csv"))
        n_text = describe_n(summary["n_seeds"], d["n_utterances"].dropna().astype(int))
        rsec = Section(f"{dataset}: robustness")
        rep.sections.append(rsec)
        paths = robustness_figure(summary, headline, figures / f"robustness_{dataset}", dataset, variants=main_models,
                                  styles=styles, titles=titles, full_model=full_model)
        rep.figure(rsec, paths, f"Robustness curves on {dataset}",
                   f"{h.display} of each model as each corruption grows harsher. One panel per corruption; x: severity "
                   f"from 0 (clean) to the harshest run, with the corruption's physical parameter under each index; y: "
                   f"{h.label()} on the test split. Lines are means over seeds, shaded bands their 95% intervals over "
                   f"training seeds and the shared test set ({n_text}). A flatter line is a more robust model; a hollow cross on the floor marks a "
                   f"point where every seed failed.")
        if ablated and full_model:
            paths = ablation_curves(summary, headline, figures / f"robustness_ablation_{dataset}", full_model, ablated,
                                    dataset, styles=styles, titles=titles)
            rep.figure(rsec, paths, f"Ablation under corruption on {dataset}",
                       f"The ablation variants of {full_model} under each corruption. Each row is one ablation switch: "
                       f"the full model (black, thick, with its 95% band) and the variants that change that switch; "
                       f"each column one corruption, severity on x as in the robustness curves, {h.label()} on y. A "
                       f"variant below the black line loses more than the full model.")
        robs = {m: robustness_summary(curves(d, m), m, reference=reference) for m in dict.fromkeys([*metrics, headline])}
        rob = robs[headline]
        rob.to_csv(rep.run_dir / "tables" / f"robustness_summary_{dataset}.csv", index=False)
        rep.written["tables"].append(str(rep.run_dir / "tables" / f"robustness_summary_{dataset}.csv"))
        mce = None
        if reference is not None:
            mce = mce_table(rob)
            mce.to_csv(rep.run_dir / "tables" / f"mce_{dataset}.csv", index=False)
            rep.written["tables"].append(str(rep.run_dir / "tables" / f"mce_{dataset}.csv"))
        rep.table(rsec, f"robustness_{dataset}",
                  robustness_overview_table(rob, headline, groups, titles, dataset, n_text, mce, reference),
                  f"Robustness summary on {dataset} ({h.display})")
        for k, corr in enumerate(sorted(corrupted, key=lambda c: titles.get(c, c))):
            rep.table(rsec, f"robustness_{dataset}_{k + 1:02d}",
                      robustness_metric_table({m: robs[m] for m in metrics}, headline, corr, groups,
                                              titles.get(corr, corr), dataset, n_text, reference,
                                              label_suffix=f"{k + 1:02d}"),
                      f"Robustness to {titles.get(corr, corr)} on {dataset}, every metric")
        worst = int(rob["worst_severity"].max())
        paths = drop_heatmap(rob, worst, figures / f"drop_heatmap_{dataset}", groups=groups, titles=titles,
                             metric_display=h.display)
        rep.figure(rsec, paths, f"Relative drop at severity {worst} on {dataset}",
                   f"How much of its clean {h.display} each model loses at the harshest severity ({worst}) of each "
                   f"corruption, in % of its clean score ({'(m0 − m)/m0' if h.higher_is_better else '(m − m0)/m0'}). "
                   f"Rows: the full model and the baselines, then (below the rule) the ablation variants; darker is a "
                   f"larger loss; a negative value is a gain.")
        if not rob[["m0", "aurc"]].dropna().empty:  # every model failed somewhere: no point to draw
            paths = clean_vs_robust(rob, figures / f"clean_vs_robust_{dataset}", metric=headline, styles=styles)
            rep.figure(rsec, paths, f"Clean score against robustness on {dataset}",
                       f"Each point is one model: x its clean {h.label()}, y its AURC (the area under its severity "
                       f"curve, divided by the severity span) averaged over the corruptions. The dashed diagonal is "
                       f"'no loss': the farther {'below' if h.higher_is_better else 'above'} it, the more the model "
                       f"loses under corruption.")
    if full_model is not None and full_model in set(ok["variant"]) and ablated:
        asec = Section(f"{dataset}: ablation")
        rep.sections.append(asec)
        abl = ablation_rows(d, headline, full=full_model, dataset=dataset, predictions=store.predictions,
                            variants=ablated, corruption=_cfg_corruption(rep, d), n_boot=n_boot)
        abl.to_csv(rep.run_dir / "tables" / f"ablation_{dataset}.csv", index=False)
        rep.written["tables"].append(str(rep.run_dir / "tables" / f"ablation_{dataset}.csv"))
        t = ablation_table(abl, headline, full_model, titles)
        t.label = f"tab:ablation-{dataset}"
        rep.table(asec, f"ablation_{dataset}", t, f"Ablation of {full_model} on {dataset}")
        paths = ablation_figure(abl, figures / f"ablation_{dataset}", metric=headline, titles=titles)
        rep.figure(asec, paths, f"Ablation deltas on {dataset}",
                   f"Each bar is one variant's Δ {h.display}: its mean over seeds minus the full model's, clean (left) "
                   f"and at the worst condition (right), with its 95% interval (training seeds and the shared test set). Blue: better "
                   f"than the full model, orange: worse; hatched: significant after Holm's correction.")
    if full_model is not None and full_model in set(ok["variant"]) and len(set(ok["variant"])) > 1:
        csec = Section(f"{dataset}: comparisons")
        rep.sections.append(csec)
        comp = comparison_rows(d, full_model, headline, store.predictions, n_boot=n_boot)
        comp.to_csv(rep.run_dir / "tables" / f"comparisons_{dataset}.csv", index=False)
        rep.written["tables"].append(str(rep.run_dir / "tables" / f"comparisons_{dataset}.csv"))
        rep.table(csec, f"comparisons_{dataset}", comparisons_table(comp, headline, dataset),
                  f"{full_model} against every other model on {dataset}",
                  "Clean and at each corruption's highest severity: the difference, its interval and method, n, "
                  "and what the run could detect.")
    hist = histories(trainings, dataset) if len(trainings) else pd.DataFrame()
    if not hist.empty and f"valid_{headline}" in hist.columns:
        lsec = Section(f"{dataset}: training")
        rep.sections.append(lsec)
        order = [v for g in groups for v in g]
        paths = learning_curves(hist, headline, figures / f"learning_curves_{dataset}", models=order, styles=styles)
        valid_loss = "valid_loss" in hist.columns
        rep.figure(lsec, paths, f"Learning curves on {dataset}",
                   f"Per model, the training loss (upper panel) and the validation {h.label()} (lower panel) at every "
                   f"epoch; one line per seed, the dot marks the epoch selected on the validation split (its test "
                   f"scores are the ones reported)."
                   + ("" if valid_loss else " The trainer records no validation loss, so none is drawn."))


def _cfg_corruption(rep: Report, d: pd.DataFrame) -> str | None:
    """The configured ablation corruption when the rows have it (else the worst is chosen)."""
    wanted = rep.ablation_corruption
    return wanted if wanted in set(d["corruption"]) else None


def _info_sections(rep: Report, store: ResultStore, df: pd.DataFrame) -> None:
    sec = Section("Setup")
    if (df["corruption"] != CLEAN).any():
        rep.table(sec, "severities", severity_table(df), "Severity levels",
                  "The physical parameter of each corruption at each severity, as stored with the results.")
    cards = store.artifacts("dataset_card")
    if cards:
        rep.table(sec, "datasets", dataset_cards_table(list(cards.values())), "Datasets")
    _deployment_tables(rep, sec, store.artifacts("deployment"), df)
    for dataset in sorted(df["dataset"].unique()):  # drawn at run time from raw media (not in the store)
        gallery = rep.run_dir / "figures" / f"gallery_{dataset}.png"
        if gallery.exists():
            rep.figure(sec, [str(gallery), str(gallery.with_suffix(".pdf"))], f"Corruption gallery ({dataset})",
                       "One test utterance under each raw-media corruption of the sweep (rows) at severities 0 to 5 "
                       "(columns), with the physical parameter under each panel.")
    if sec.items:
        rep.sections.append(sec)


def _deployment_tables(rep: Report, sec: Section, records: dict[str, dict], df: pd.DataFrame) -> None:
    """``tables/deployment_<dataset>``: one row per model label (in the order of the result
    rows), from the ``deployment`` artifacts a sweep stored."""
    order = list(dict.fromkeys(df["variant"]))
    for dataset in sorted({r.get("dataset") for r in records.values()} - {None}):
        recs = [r for r in records.values() if r.get("dataset") == dataset]
        recs.sort(key=lambda r: (order.index(r["variant"]) if r["variant"] in order else len(order), r["variant"],
                                 str(r.get("device"))))
        devices = {str(r.get("device")) for r in recs}
        names = [r["variant"] if len(devices) == 1 else f"{r['variant']} ({r.get('device')})" for r in recs]
        rep.table(sec, f"deployment_{dataset}", deployment_table(recs, names), f"Deployment cost ({dataset})")


def _write_markdown(rep: Report, df: pd.DataFrame, runs: list[dict[str, Any]], title: str | None,
                    extra: list[str] | None = None) -> None:
    run_dir = rep.run_dir
    failed = df[df["status"] != "ok"]
    lines = [f"# {title or f'mcer-bench report: {run_dir.name}'}", "",
             f"Rows: {len(df)} ({len(failed)} failed), from {len(runs)} run(s). Figures as PNG and PDF in "
             f"`figures/`, tables as LaTeX and Markdown in `tables/`, every cell in `results.json`.", "",
             *_determinism_lines(df)]
    for sec in rep.sections:
        lines += [f"## {sec.title}", ""]
        for item in sec.items:
            rel = Path(item.path).relative_to(run_dir)
            if item.kind == "figure":
                lines += [f"**{item.title}.** {item.caption}", "", f"![{item.title}]({rel})", ""]
            else:
                md = Path(item.path).with_suffix(".md").read_text()
                lines += [md, ""]
    if len(failed):
        lines += ["## Failed cells", "", "| model | seed | corruption | severity | reason |", "|---|---|---|---|---|"]
        lines += [f"| {r.variant} | {r.seed} | {r.corruption} | {r.severity} | {r.error} |" for r in failed.itertuples()]
        lines.append("")
    lines += extra or []
    (run_dir / "report.md").write_text("\n".join(lines) + "\n")

