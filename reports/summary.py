"""A run's headline numbers and claims, as a small JSON file that documents can quote and tests
can check: every number a README states about the demo comes from here.

``python -m reports.summary RUN_DIR --out docs/demo/summary.json --model mcer`` writes, for the
chosen metric (default: the dataset's headline) and every model:

* ``cells``: per (model, condition) the mean over seeds and its 95% interval (two-level
  bootstrap over seeds and test utterances), for the clean test set and each corruption's
  highest severity;
* ``comparisons``: ``--model`` against every other model in each of those conditions: the
  difference of the seed means with the 95% interval and p of the paired bootstrap over seeds
  and utterances, and whether the interval excludes zero (``holds``);
* the provenance (code version, config hash, seeds, test utterances) it was computed from.

``--markdown`` also prints the two tables a README quotes (:func:`markdown_tables`), in the
format ``tests/test_readme_claims.py`` checks: cells as ``mean [low, high]`` in points, and one
verdict per comparison read off its interval.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.metrics import default_metric, metric
from harness.store import CLEAN, ResultStore
from reports.intervals import cell_stats
from reports.metric_sets import task_of
from reports.stats import paired_bootstrap_seeds


def conditions(df: pd.DataFrame) -> list[tuple[str, int]]:
    """``(corruption, severity)``: the clean cell, then each corruption at its highest severity."""
    out = [(CLEAN, 0)]
    corrupted = df[df["corruption"] != CLEAN]
    for corr, g in corrupted.groupby("corruption", sort=True):
        out.append((str(corr), int(g["severity"].max())))
    return out


def condition_name(corruption: str, severity: int) -> str:
    return CLEAN if corruption == CLEAN else f"{corruption}@{severity}"


def run_summary(run_dir: str | Path, model: str, metric_name: str | None = None, n_boot: int = 2000) -> dict[str, Any]:
    """The summary of ``run_dir`` (see the module doc), comparing ``model`` with every other model."""
    store = ResultStore(Path(run_dir) / "results.sqlite", read_only=True)
    df = store.dataframe()
    ok = df[(df["status"] == "ok") & (df["defense"].fillna("none") == "none")]
    if model not in set(ok["variant"]):
        raise ValueError(f"summary: model {model!r} has no successful rows; models: {sorted(set(ok['variant']))}")
    datasets = sorted(ok["dataset"].unique())
    if len(datasets) != 1:
        raise ValueError(f"summary: one dataset per summary, the run has {datasets}")
    name = metric_name or default_metric(task_of(ok))
    col = f"metric_{name}"
    cells: dict[str, dict[str, Any]] = {}
    comparisons: list[dict[str, Any]] = []
    for corr, sev in conditions(ok):
        sel = ok[(ok["corruption"] == corr) & (ok["severity"] == sev)]
        cond = condition_name(corr, sev)
        for variant, g in sel.groupby("variant", sort=True):
            g = g.sort_values("seed")
            s = cell_stats(g[col].to_numpy(float), name, list(g["cell_key"]), store.predictions, n_boot=n_boot)
            cells[f"{variant}|{cond}"] = {"variant": variant, "condition": cond, "mean": s.mean, "ci_low": s.ci_low,
                                          "ci_high": s.ci_high, "n_seeds": s.n_seeds, "n_utterances": s.n_utterances}
        base = sel[sel["variant"] == model].set_index("seed")
        for other, g in sel[sel["variant"] != model].groupby("variant", sort=True):
            seeds = sorted(set(g["seed"]) & set(base.index))
            if not seeds:
                continue
            g = g.set_index("seed")
            pairs = [(store.predictions(base.loc[s, "cell_key"]), store.predictions(g.loc[s, "cell_key"]))
                     for s in seeds]
            res = paired_bootstrap_seeds(pairs, name, n_boot=n_boot)
            comparisons.append({"model": model, "other": other, "condition": cond, "delta": res["effect"],
                                "ci_low": res["ci_low"], "ci_high": res["ci_high"], "p": res["p"],
                                "n_seeds": len(seeds), "n_utterances": int(len(pairs[0][0]["uids"])),
                                "holds": bool(res["ci_low"] > 0 or res["ci_high"] < 0)})
    runs = store.runs()
    last = runs[-1] if runs else {"config_hash": None, "provenance": {}}
    return {"metric": name, "display": metric(name).label(), "dataset": datasets[0], "model": model,
            "seeds": sorted(int(s) for s in ok["seed"].unique()),
            "provenance": {"config_hash": last["config_hash"],
                           "code_versions": sorted(set(df["code_version"])),
                           "devices": sorted(set(df["device"]))},
            "cells": cells, "comparisons": comparisons}


def verdict(comparison: dict[str, Any], higher_is_better: bool = True) -> str:
    """What a comparison's interval supports: "<model> better", "<model> worse" or "no
    difference shown" (the interval of ``model - other`` contains zero)."""
    model = comparison["model"]
    above, below = comparison["ci_low"] > 0, comparison["ci_high"] < 0
    if above or below:
        return f"{model} better" if above == higher_is_better else f"{model} worse"
    return "no difference shown"


def _points(x: float) -> str:
    return f"{x * 100:.1f}"


def _cell(c: dict[str, Any]) -> str:
    return f"{_points(c['mean'])} [{_points(c['ci_low'])}, {_points(c['ci_high'])}]"


def _delta(c: dict[str, Any]) -> str:
    return f"{c['delta'] * 100:+.1f} [{c['ci_low'] * 100:+.1f}, {c['ci_high'] * 100:+.1f}]"


def markdown_tables(summary: dict[str, Any], models: list[str] | None = None,
                    conditions_shown: list[str] | None = None) -> str:
    """The README's two tables: per model the mean and 95% interval of the summary's metric in
    each condition (points; the text around the table names the metric),
    and the summary's model against each other model with the delta, its interval and
    :func:`verdict`. ``models`` / ``conditions_shown`` choose and order rows and columns
    (default: all, clean first)."""
    cells = summary["cells"]
    all_models = sorted({c["variant"] for c in cells.values()})
    models = models or [summary["model"]] + [m for m in all_models if m != summary["model"]]
    conds = conditions_shown or list(dict.fromkeys(c["condition"] for c in cells.values()))
    lines = ["| model | " + " | ".join(conds) + " |",
             "|---|" + "---:|" * len(conds)]
    for m in models:
        lines.append(f"| `{m}` | " + " | ".join(_cell(cells[f"{m}|{c}"]) for c in conds) + " |")
    lines += ["", "| comparison | condition | Δ | verdict |", "|---|---|---:|---|"]
    for c in summary["comparisons"]:
        if c["other"] in models and c["condition"] in conds:
            better = metric(summary["metric"]).higher_is_better
            lines.append(f"| `{c['model']}` vs `{c['other']}` | {c['condition']} | {_delta(c)} | {verdict(c, better)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--model", required=True, help="the model every other is compared with, e.g. mcer")
    parser.add_argument("--metric", help="default: the dataset's headline metric")
    parser.add_argument("--out", required=True, help="where to write the JSON summary")
    parser.add_argument("--markdown", action="store_true", help="also print the README's two tables")
    parser.add_argument("--models", nargs="+", help="with --markdown: the rows, in order (default: all)")
    parser.add_argument("--conditions", nargs="+", help="with --markdown: the columns (default: all)")
    args = parser.parse_args(argv)
    summary = run_summary(args.run_dir, args.model, args.metric)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {args.out}: {len(summary['cells'])} cells, {len(summary['comparisons'])} comparisons")
    if args.markdown:
        print(markdown_tables(summary, args.models, args.conditions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
