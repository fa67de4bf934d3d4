"""Rebuild every figure and table of a run directory from its result store alone.

:func:`build_report` writes, under the run directory: ``figures/`` (PNG + PDF), ``tables/``
(LaTeX + Markdown, and CSV of the summaries), ``results.csv``, ``results.json``
(:mod:`reports.results_json`), ``report.md`` and ``index.html`` (:mod:`reports.html`).

The report is a list of section builders (:data:`DATASET_SECTIONS`, once per dataset, and
:data:`RUN_SECTIONS`), each a function of the run's frames (:class:`~reports.frames.RunFrames`,
:class:`~reports.frames.DatasetFrames`), those of the standard report in :mod:`reports.sections`:
a new figure is a builder in a module of its own plus one line in a list here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from harness.metrics import metric as metric_info
from harness.store import ResultStore
from reports import sections
from reports.aggregate import corruption_titles, model_groups
from reports.by_extractor import robustness_by_extractor
from reports.comparisons import comparisons_section
from reports.feature_cache import feature_cache_section
from reports.frames import DatasetFrames, Report, RunFrames, Section
from reports.html import write_index
from reports.intervals import N_BOOT
from reports.metric_sets import chosen_headline, metric_set, task_of
from reports.pipeline import pipeline_section
from reports.results_json import write_results_json
from reports.style import model_styles

DATASET_SECTIONS: list[Callable[[Report, RunFrames, DatasetFrames], Section | None]] = [
    sections.main_results,
    sections.robustness,
    sections.ablation,
    comparisons_section,
    sections.training,
]
"""Each dataset's sections, in report order."""

RUN_SECTIONS: list[Callable[[Report, RunFrames], Section | None]] = [
    robustness_by_extractor,
    sections.setup,
    feature_cache_section,
    pipeline_section,
]
"""The sections about the whole run, after the datasets'."""


def _report_config(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(runs[-1]["config"].get("report", {})) if runs else {}


def has_scores(rows: pd.DataFrame) -> bool:
    """Whether ``rows`` hold any metric value (a dataset whose every cell failed holds none)."""
    return any(rows[c].notna().any() for c in rows.columns if c.startswith("metric_"))


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


def build_report(run_dir: str | Path, metric: str | None = None, n_boot: int = N_BOOT,
                 report_config: dict[str, Any] | None = None, title: str | None = None,
                 titles: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Write the report of ``run_dir`` (see the module doc) from ``run_dir/results.sqlite``;
    return ``{"figures": [...], "tables": [...]}`` (paths). ``metric`` overrides the config's
    ``[report] metric`` (the headline of figures and robustness tables); ``report_config``
    replaces the stored ``[report]`` section (``mcer-bench compare`` passes the first run's);
    ``titles`` names corruptions whose rows store no title (a store written before titles were
    stored), else they are named by their labels. A dataset whose every cell failed gets no
    figures, only its rows under "Failed cells"; a store without a single score is refused."""
    run_dir = Path(run_dir)
    db = run_dir / "results.sqlite"
    if not db.is_file():
        raise FileNotFoundError(f"{run_dir} has no results.sqlite: is it a run directory made by 'mcer-bench run'?")
    store = ResultStore(db, read_only=True)
    df = store.dataframe()
    if df.empty:
        raise ValueError(f"{db} holds no result rows yet")
    if not has_scores(df):
        raise ValueError(f"{db}: every one of its {len(df)} result rows failed, so there is nothing to report; their "
                         f"errors: {'; '.join(sorted(set(df['error'].dropna().astype(str)))[:3])}")
    runs = store.runs()
    cfg = report_config if report_config is not None else _report_config(runs)
    requested = metric or cfg.get("metric")
    if requested is not None:
        try:
            metric_info(requested)
        except KeyError as exc:  # a ValueError, so that the CLI prints one line and exits 2
            raise ValueError(f"report metric: {exc.args[0]}") from None
    (run_dir / "figures").mkdir(exist_ok=True)
    (run_dir / "tables").mkdir(exist_ok=True)
    run = RunFrames(run_dir, df, store.dataframe("trainings"), store.artifacts("dataset_card"),
                    store.artifacts("deployment"), store.predictions, corruption_titles(df, titles),
                    model_styles(df["variant"].unique()),  # fixed per label: the same in every figure and run
                    cfg.get("full_model"), cfg.get("reference"), cfg.get("ablation_corruption"), n_boot, requested,
                    store.artifacts("feature_cache").get("summary", {}), store.artifacts("pipeline"))
    scored = [d for d in sorted(df["dataset"].unique()) if has_scores(df[df["dataset"] == d])]
    tasks = {d: task_of(df[df["dataset"] == d]) for d in scored}
    if requested is not None and metric_info(requested).task not in set(tasks.values()):
        raise ValueError(f"report metric {requested!r} is a {metric_info(requested).task} metric, but the results hold "
                         f"only {sorted(set(tasks.values()))} datasets ({', '.join(tasks)})")
    rep = Report(run_dir)
    json_datasets: dict[str, dict[str, Any]] = {}
    for dataset in scored:
        data = _dataset_frames(run, dataset, tasks[dataset], requested)
        json_datasets[dataset] = {"task": data.task, "metrics": list(data.metrics), "headline": data.headline}
        rep.sections += [s for build in DATASET_SECTIONS if (s := build(rep, run, data)) is not None]
    rep.sections += [s for build in RUN_SECTIONS if (s := build(rep, run)) is not None]
    store.to_csv(run_dir / "results.csv")
    write_results_json(run_dir / "results.json", df, runs, json_datasets, predictions=store.predictions,
                       n_boot=n_boot)
    rep.written["tables"] += [str(run_dir / "results.csv"), str(run_dir / "results.json")]
    _write_markdown(rep, df, runs, title, _training_nodes(run.trainings) + _tuning_lines(store.artifacts("tuning")))
    write_index(run_dir, rep.sections, runs, df, title=title)
    rep.written["tables"] += [str(run_dir / "report.md"), str(run_dir / "index.html")]
    return rep.written


def _dataset_frames(run: RunFrames, dataset: str, task: str, requested: str | None) -> DatasetFrames:
    d = run.results[run.results["dataset"] == dataset]
    ok = d[d["status"] == "ok"]
    card = run.cards.get(dataset) or {}
    ablated = _ablation_variants(ok, run.full_model)
    declared = (card.get("spec") or {}).get("metric_set")
    return DatasetFrames(dataset, d, ok, task, metric_set(task, [dataset, card.get("name")], declared),
                         chosen_headline(requested, task, declared), card, ablated,
                         model_groups(sorted(d["variant"].unique()), run.full_model, ablated))


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
