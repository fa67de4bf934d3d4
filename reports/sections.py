"""The report's section builders: each is a function of the run's frames that adds one section.

A dataset section builder takes the :class:`~reports.build.Report` being written, the run's
frames (:class:`~reports.frames.RunFrames`) and one dataset's frames
(:class:`~reports.frames.DatasetFrames`), writes its figures and tables through the report and
returns its :class:`~reports.frames.Section` (``None`` when the data holds nothing for it). A
run section builder takes the report and the run's frames. :mod:`reports.build` lists them in
report order; a new figure is a builder in a module of its own plus one line in that list.
"""

from __future__ import annotations

import pandas as pd

from harness.metrics import metric as metric_info
from harness.store import CLEAN
from reports.ablation import ablation_figure
from reports.ablation_table import ablation_rows, ablation_table
from reports.aggregate import curves
from reports.curves import ablation_curves, robustness_figure
from reports.deployment import deployment_table
from reports.frames import DatasetFrames, Report, RunFrames, Section
from reports.heatmap import drop_heatmap
from reports.info_tables import dataset_cards_table, severity_table
from reports.intervals import describe_n
from reports.learning import histories, learning_curves
from reports.main_table import main_results_table, per_class_table
from reports.metric_sets import per_class_metrics, wants_per_class
from reports.robustness import mce_table, robustness_summary
from reports.robustness_tables import robustness_metric_table, robustness_overview_table
from reports.scatter import clean_vs_robust


def main_results(rep: Report, run: RunFrames, data: DatasetFrames) -> Section:
    """The clean test results in every metric of the dataset's set, and per-class F1 where the
    dataset's convention reports it."""
    sec = rep.section(f"{data.name}: main results")
    d, card = data.rows, data.card
    main = main_results_table(d, data.metrics, data.name, run.predictions, run.full_model, data.ablated,
                              n_boot=run.n_boot)
    rep.table(sec, f"main_{data.name}", main, f"Clean test results on {data.name}",
              "Every metric of the dataset's conventional set on the clean test split.")
    if wants_per_class(data.task, [data.name, card.get("name")]):
        pcm = [m for m in per_class_metrics(d.columns) if d[f"metric_{m}"].notna().any()]
        names = (card.get("spec") or {}).get("class_names") or []  # the dataset's class order when known
        pcm.sort(key=lambda m: names.index(m[3:]) if m[3:] in names else len(names))
        if pcm:
            rep.table(sec, f"per_class_{data.name}", per_class_table(d, pcm, data.name, run.full_model, data.ablated),
                      f"Per-class F1 on {data.name}")
    return sec


def robustness(rep: Report, run: RunFrames, data: DatasetFrames) -> Section | None:
    """Robustness curves, the ablation under corruption, the summary tables, the drop heatmap
    and clean score against robustness; ``None`` for a clean-only run."""
    d, dataset, headline = data.rows, data.name, data.headline
    corrupted = sorted(set(d["corruption"]) - {CLEAN})
    if not corrupted:
        return None
    h, titles, figures, tables = metric_info(headline), run.titles, run.run_dir / "figures", run.run_dir / "tables"
    summary = curves(d, headline, run.predictions, run.n_boot)
    rep.csv(summary, tables / f"robustness_curves_{dataset}.csv")
    n_text = describe_n(summary["n_seeds"], d["n_utterances"].dropna().astype(int))
    sec = rep.section(f"{dataset}: robustness")
    paths = robustness_figure(summary, headline, figures / f"robustness_{dataset}", dataset, variants=data.groups[0],
                              styles=run.styles, titles=titles, full_model=run.full_model)
    rep.figure(sec, paths, f"Robustness curves on {dataset}",
               f"{h.display} of each model as each corruption grows harsher. One panel per corruption; x: severity "
               f"from 0 (clean) to the harshest run, with the corruption's physical parameter under each index; y: "
               f"{h.label()} on the test split. Lines are means over seeds, shaded bands their 95% intervals over "
               f"training seeds and the shared test set ({n_text}). A flatter line is a more robust model; a hollow cross on the floor marks a "
               f"point where every seed failed.")
    if data.ablated and run.full_model:
        paths = ablation_curves(summary, headline, figures / f"robustness_ablation_{dataset}", run.full_model,
                                data.ablated, dataset, styles=run.styles, titles=titles)
        rep.figure(sec, paths, f"Ablation under corruption on {dataset}",
                   f"The ablation variants of {run.full_model} under each corruption. Each row is one ablation "
                   f"switch: the full model (black, thick, with its 95% band) and the variants that change that "
                   f"switch; each column one corruption, severity on x as in the robustness curves, {h.label()} on y. "
                   f"A variant below the black line loses more than the full model.")
    robs = {m: robustness_summary(curves(d, m), m, reference=run.reference)
            for m in dict.fromkeys([*data.metrics, headline])}
    rob = robs[headline]
    rep.csv(rob, tables / f"robustness_summary_{dataset}.csv")
    mce = None
    if run.reference is not None:
        mce = mce_table(rob)
        rep.csv(mce, tables / f"mce_{dataset}.csv")
    rep.table(sec, f"robustness_{dataset}",
              robustness_overview_table(rob, headline, data.groups, titles, dataset, n_text, mce, run.reference),
              f"Robustness summary on {dataset} ({h.display})")
    for k, corr in enumerate(sorted(corrupted, key=lambda c: titles.get(c, c))):
        rep.table(sec, f"robustness_{dataset}_{k + 1:02d}",
                  robustness_metric_table({m: robs[m] for m in data.metrics}, headline, corr, data.groups,
                                          titles.get(corr, corr), dataset, n_text, run.reference,
                                          label_suffix=f"{k + 1:02d}"),
                  f"Robustness to {titles.get(corr, corr)} on {dataset}, every metric")
    worst = int(rob["worst_severity"].max())
    paths = drop_heatmap(rob, worst, figures / f"drop_heatmap_{dataset}", groups=data.groups, titles=titles,
                         metric_display=h.display)
    rep.figure(sec, paths, f"Relative drop at severity {worst} on {dataset}",
               f"How much of its clean {h.display} each model loses at the harshest severity ({worst}) of each "
               f"corruption, in % of its clean score ({'(m0 − m)/m0' if h.higher_is_better else '(m − m0)/m0'}). "
               f"Rows: the full model and the baselines, then (below the rule) the ablation variants; darker is a "
               f"larger loss; a negative value is a gain.")
    if not rob[["m0", "aurc"]].dropna().empty:  # every model failed somewhere: no point to draw
        paths = clean_vs_robust(rob, figures / f"clean_vs_robust_{dataset}", metric=headline, styles=run.styles)
        rep.figure(sec, paths, f"Clean score against robustness on {dataset}",
                   f"Each point is one model: x its clean {h.label()}, y its AURC (the area under its severity "
                   f"curve, divided by the severity span) averaged over the corruptions. The dashed diagonal is "
                   f"'no loss': the farther {'below' if h.higher_is_better else 'above'} it, the more the model "
                   f"loses under corruption.")
    return sec


def ablation(rep: Report, run: RunFrames, data: DatasetFrames) -> Section | None:
    """The full model's ablation: the table of deltas and their figure (``None`` without one)."""
    full, dataset, headline, ok = run.full_model, data.name, data.headline, data.ok
    if full is None or full not in set(ok["variant"]) or not data.ablated:
        return None
    h = metric_info(headline)
    sec = rep.section(f"{dataset}: ablation")
    wanted = run.ablation_corruption
    abl = ablation_rows(data.rows, headline, full=full, dataset=dataset, predictions=run.predictions,
                        variants=data.ablated, corruption=wanted if wanted in set(data.rows["corruption"]) else None,
                        n_boot=run.n_boot)
    rep.csv(abl, run.run_dir / "tables" / f"ablation_{dataset}.csv")
    t = ablation_table(abl, headline, full, run.titles)
    t.label = f"tab:ablation-{dataset}"
    rep.table(sec, f"ablation_{dataset}", t, f"Ablation of {full} on {dataset}")
    paths = ablation_figure(abl, run.run_dir / "figures" / f"ablation_{dataset}", metric=headline, titles=run.titles)
    rep.figure(sec, paths, f"Ablation deltas on {dataset}",
               f"Each bar is one variant's Δ {h.display}: its mean over seeds minus the full model's, clean (left) "
               f"and at the worst condition (right), with its 95% interval (training seeds and the shared test set). Blue: better "
               f"than the full model, orange: worse; hatched: significant after Holm's correction.")
    return sec


def training(rep: Report, run: RunFrames, data: DatasetFrames) -> Section | None:
    """Learning curves of every model (``None`` when no training history was stored)."""
    hist = histories(run.trainings, data.name) if len(run.trainings) else pd.DataFrame()
    if hist.empty or f"valid_{data.headline}" not in hist.columns:
        return None
    h = metric_info(data.headline)
    sec = rep.section(f"{data.name}: training")
    order = [v for g in data.groups for v in g]
    paths = learning_curves(hist, data.headline, run.run_dir / "figures" / f"learning_curves_{data.name}",
                            models=order, styles=run.styles)
    rep.figure(sec, paths, f"Learning curves on {data.name}",
               f"Per model, the training loss (upper panel) and the validation {h.label()} (lower panel) at every "
               f"epoch; one line per seed, the dot marks the epoch selected on the validation split (its test "
               f"scores are the ones reported)."
               + ("" if "valid_loss" in hist.columns else " The trainer records no validation loss, so none is drawn."))
    return sec


def setup(rep: Report, run: RunFrames) -> Section | None:
    """Severity levels, dataset cards, deployment cost and corruption galleries."""
    sec = rep.section("Setup")
    df = run.results
    if (df["corruption"] != CLEAN).any():
        rep.table(sec, "severities", severity_table(df), "Severity levels",
                  "The physical parameter of each corruption at each severity, as stored with the results.")
    if run.cards:
        rep.table(sec, "datasets", dataset_cards_table(list(run.cards.values())), "Datasets")
    _deployment_tables(rep, sec, run.deployments, df)
    for dataset in sorted(df["dataset"].unique()):  # drawn at run time from raw media (not in the store)
        gallery = run.run_dir / "figures" / f"gallery_{dataset}.png"
        if gallery.exists():
            rep.figure(sec, [str(gallery), str(gallery.with_suffix(".pdf"))], f"Corruption gallery ({dataset})",
                       "One test utterance under each raw-media corruption of the sweep (rows) at severities 0 to 5 "
                       "(columns), with the physical parameter under each panel.")
    return sec if sec.items else None


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
