"""A run's headline numbers and claims, as a small JSON file that documents can quote and tests
can check: every number a README states about the demo comes from here.

``python -m reports.summary RUN_DIR --out docs/demo/summary.json --model mcer`` writes, for the
chosen metric (default: the dataset's headline) and every model:

* ``cells``: per (model, condition) the mean over seeds and its 95% interval
  (:func:`reports.intervals.cell_stats`: training seeds and the shared test set), for the clean
  test set and each corruption's highest severity;
* ``comparisons``: ``--model`` against every other model in each of those conditions
  (:func:`reports.comparisons.comparison_rows`): the difference of the seed means with its 95%
  interval, p, the interval's method, n, the smallest difference the run could detect at 80%
  power, the seeds it would take to detect the observed one, and the verdict read off the
  interval (``holds``: the interval excludes zero);
* the provenance (code version, config hash, seeds, test utterances) it was computed from.

``--markdown`` also prints the two tables a README quotes (:func:`markdown_tables`), in the
format ``tests/test_readme_claims.py`` checks: cells as ``mean [low, high]`` in points, and one
verdict per comparison read off its interval, with the detectable difference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from harness.metrics import default_metric, metric
from harness.store import ResultStore
from reports.comparisons import comparison_rows, condition_name, conditions
from reports.intervals import N_BOOT, cell_stats
from reports.main_table import all_rows
from reports.metric_sets import task_of


def _finite(x: Any) -> Any:
    """NaN and inf as None, so the file is strict JSON."""
    return None if isinstance(x, float) and not np.isfinite(x) else x


def run_summary(run_dir: str | Path, model: str, metric_name: str | None = None, n_boot: int = N_BOOT) -> dict[str, Any]:
    """The summary of ``run_dir`` (see the module doc), comparing ``model`` with every other model."""
    store = ResultStore(Path(run_dir) / "results.sqlite", read_only=True)
    df = store.dataframe()
    rows = all_rows(df)
    rows = rows[rows["defense"] == "none"]
    ok = rows[rows["status"] == "ok"]
    if model not in set(ok["variant"]):
        raise ValueError(f"summary: model {model!r} has no successful rows; models: {sorted(set(ok['variant']))}")
    datasets = sorted(ok["dataset"].unique())
    if len(datasets) != 1:
        raise ValueError(f"summary: one dataset per summary, the run has {datasets}")
    name = metric_name or default_metric(task_of(ok))
    col = f"metric_{name}"
    cells: dict[str, dict[str, Any]] = {}
    for corr, sev in conditions(ok):
        sel = rows[(rows["corruption"] == corr) & (rows["severity"] == sev)]
        cond = condition_name(corr, sev)
        for variant, g in sel.groupby("variant", sort=True):
            g = g.sort_values("seed")
            s = cell_stats(g[col].to_numpy(float), name, list(g["cell_key"]), store.predictions, n_boot=n_boot)
            cells[f"{variant}|{cond}"] = {"variant": variant, "condition": cond, "mean": _finite(s.estimate),
                                          "ci_low": _finite(s.ci_low), "ci_high": _finite(s.ci_high),
                                          "n_seeds": s.n_seeds[0], "n_failed": s.n_failed,
                                          "n_utterances": s.n_utterances, "method": s.method}
    comparisons = []
    for r in comparison_rows(rows, model, name, store.predictions, n_boot=n_boot).to_dict("records"):
        r = {k: _finite(v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        r["holds"] = r["verdict"] not in ("no difference shown", "not estimated")
        comparisons.append(r)
    runs = store.runs()
    last = runs[-1] if runs else {"config_hash": None, "provenance": {}}
    return {"metric": name, "display": metric(name).label(), "dataset": datasets[0], "model": model,
            "seeds": sorted(int(x) for x in ok["seed"].unique()),
            "seeds_by_model": {v: sorted(int(x) for x in g["seed"].unique()) for v, g in ok.groupby("variant", sort=True)},
            "provenance": {"config_hash": last["config_hash"],
                           "code_versions": sorted(set(df["code_version"])),
                           "devices": sorted(set(df["device"]))},
            "cells": cells, "comparisons": comparisons}


SHOWN = ("better", "worse")


def compare_summaries(reference: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """How ``other`` (a summary of another run of the same sweep, e.g. on another arithmetic
    path) differs from ``reference``, verdict by verdict and cell by cell.

    ``changed``: the comparisons shown in one and not the other (``"other / condition: a -> b"``);
    ``sign_flips``: those shown in both with opposite signs; ``total``: the comparisons both hold;
    ``cells_moved`` of ``cells`` headline cells whose means differ at all, with the largest and
    the median absolute shift (stored units)."""
    ref = {(c["other"], c["condition"]): c for c in reference["comparisons"]}
    changed, flips = [], []
    both = [(k, ref[k], c) for c in other["comparisons"] if (k := (c["other"], c["condition"])) in ref]
    for key, a, b in both:
        shown_a, shown_b = a["verdict"].endswith(SHOWN), b["verdict"].endswith(SHOWN)
        if shown_a != shown_b:
            changed.append(f"{key[0]} / {key[1]}: {a['verdict']} -> {b['verdict']}")
        elif shown_a and a["verdict"] != b["verdict"]:
            flips.append(f"{key[0]} / {key[1]}: {a['verdict']} -> {b['verdict']}")
    shifts = [abs(other["cells"][k]["mean"] - c["mean"]) for k, c in reference["cells"].items()
              if k in other["cells"] and c["mean"] is not None and other["cells"][k]["mean"] is not None]
    moved = [x for x in shifts if x > 0]
    return {"changed": changed, "sign_flips": flips, "total": len(both), "cells": len(shifts),
            "cells_moved": len(moved), "max_cell_shift": max(moved, default=0.0),
            "median_cell_shift": float(sorted(moved)[len(moved) // 2]) if moved else 0.0}


def add_second_path(summary: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """``summary`` with ``second_path``: what :func:`compare_summaries` found against ``other``
    (and ``other``'s devices), and each comparison marked ``same_on_second_path``."""
    diff = compare_summaries(summary, other)
    verdicts = {(c["other"], c["condition"]): c["verdict"] for c in other["comparisons"]}
    for c in summary["comparisons"]:
        c["same_on_second_path"] = verdicts.get((c["other"], c["condition"])) == c["verdict"]
    summary["second_path"] = {**diff, "devices": other["provenance"]["devices"]}
    return summary


def _points(x: float) -> str:
    return f"{x * 100:.1f}"


def _cell(c: dict[str, Any]) -> str:
    return f"{_points(c['mean'])} [{_points(c['ci_low'])}, {_points(c['ci_high'])}]"


def _delta(c: dict[str, Any]) -> str:
    return f"{c['delta'] * 100:+.1f} [{c['ci_low'] * 100:+.1f}, {c['ci_high'] * 100:+.1f}]"


def _detectable(c: dict[str, Any]) -> str:
    """The smallest difference detected with 80% power, and (for "no difference shown") the
    seeds per model that would detect the observed one, or that the test set rules it out."""
    text = _points(c["detectable"]) if c.get("detectable") is not None else "–"
    if c["verdict"] == "no difference shown":
        n = c.get("seeds_to_detect")
        text += f" (Δ needs {int(n)} seeds)" if n is not None else " (Δ needs a larger test set)"
    return text


def markdown_tables(summary: dict[str, Any], models: list[str] | None = None,
                    conditions_shown: list[str] | None = None, compared: list[str] | None = None) -> str:
    """The README's two tables: per model the mean and 95% interval of the summary's metric in
    each condition (points; the text around the table names the metric),
    and the summary's model against each other model with the delta, its interval, the verdict
    and the smallest difference the run detects with 80% power. ``models`` /
    ``conditions_shown`` choose and order rows and columns (default: all, clean first);
    ``compared`` the conditions of the comparisons (default: those of the cells). When the
    summary has a second path (:func:`add_second_path`), a comparison whose verdict changed
    there is left out of the table and listed after it."""
    cells = summary["cells"]
    all_models = sorted({c["variant"] for c in cells.values()})
    models = models or [summary["model"]] + [m for m in all_models if m != summary["model"]]
    conds = conditions_shown or list(dict.fromkeys(c["condition"] for c in cells.values()))
    compared = compared or conds
    lines = ["| model | " + " | ".join(conds) + " |",
             "|---|" + "---:|" * len(conds)]
    for m in models:
        lines.append(f"| `{m}` | " + " | ".join(_cell(cells[f"{m}|{c}"]) for c in conds) + " |")
    lines += ["", "| comparison | condition | Δ | verdict | detectable Δ (80% power) |", "|---|---|---:|---|---:|"]
    left_out = []
    for cond in compared:
        for c in summary["comparisons"]:
            if c["other"] not in models or c["condition"] != cond:
                continue
            if c.get("same_on_second_path") is False:
                left_out.append(f"`{c['other']}` / {c['condition']} ({c['verdict']})")
                continue
            lines.append(f"| `{c['model']}` vs `{c['other']}` | {c['condition']} | {_delta(c)} | {c['verdict']} | "
                         f"{_detectable(c)} |")
    if left_out:
        lines += ["", "Not quoted, because the verdict changed on the second arithmetic path: " + ", ".join(left_out)
                  + "."]
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
    parser.add_argument("--compared", nargs="+", help="with --markdown: the comparisons' conditions (default: "
                                                      "the columns)")
    parser.add_argument("--second-path", metavar="RUN_DIR",
                        help="a run of the same sweep on another arithmetic path: record which verdicts and cells "
                             "changed there; --markdown then quotes only the verdicts that held")
    args = parser.parse_args(argv)
    summary = run_summary(args.run_dir, args.model, args.metric)
    if args.second_path:
        add_second_path(summary, run_summary(args.second_path, args.model, args.metric))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {args.out}: {len(summary['cells'])} cells, {len(summary['comparisons'])} comparisons")
    if args.markdown:
        print(markdown_tables(summary, args.models, args.conditions, args.compared))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
