"""``results.json``: every cell of a run, machine-readable, beside ``results.csv``.

The file follows ``docs/results.schema.json`` (JSON Schema 2020-12; described in
docs/RESULTS.md). Top level: ``schema`` (name and version), ``generated_at``, ``runs`` (each
run's id, start time, config hash, configuration and provenance), ``datasets`` (task, the
metric set the tables print, the headline metric), ``metrics`` (display name, direction,
scale and decimals of every metric that appears), ``cells`` (one per result row: its keys,
status, physical parameter, provenance and every stored metric) and ``clean_summary`` (per
dataset, model and metric of the set: the mean over seeds with its 95% interval and n, as the
main table prints it, with the interval's method, standard error, degrees of freedom and its
training and test-set variance shares). Missing and undefined values (NaN, an infinite df) are
``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.metrics import metric as metric_info
from harness.provenance import now_utc
from reports.inference import Estimate
from reports.intervals import N_BOOT
from reports.main_table import clean_stats

SCHEMA_NAME = "mcer-bench/results"
SCHEMA_VERSION = 2  # 2: clean_summary's intervals are reports.inference's (se, df, variance shares)
CELL_FIELDS = ("cell_key", "train_key", "dataset", "model", "variant", "train_condition", "seed", "corruption",
               "severity", "parameter", "parameter_value", "defense", "split", "status", "error", "n_utterances",
               "best_epoch", "config_hash", "code_version", "device", "node", "deterministic", "extractor_set",
               "wall_time_s", "created_at")


def _clean(v: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def cells(df: pd.DataFrame) -> list[dict[str, Any]]:
    """One JSON object per result row (see the module doc)."""
    metric_cols = [c for c in df.columns if c.startswith("metric_")]
    out = []
    for r in df.to_dict("records"):
        cell = {k: _clean(r.get(k)) for k in CELL_FIELDS}
        if cell["deterministic"] is not None:  # stored as 0/1; None in stores from before the column
            cell["deterministic"] = bool(cell["deterministic"])
        stats = r.get("extraction_stats")  # JSON text; absent from stores from before the column
        cell["extraction_stats"] = json.loads(stats) if isinstance(stats, str) else None
        opts = r.get("corruption_options")
        cell["corruption_name"] = opts.get("name") if isinstance(opts, dict) else None
        cell["corruption_options"] = _clean(opts) if isinstance(opts, dict) else {}
        cell["model_options"] = _clean(r.get("model_options")) if isinstance(r.get("model_options"), dict) else {}
        cell["metrics"] = {c[len("metric_"):]: _clean(r[c]) for c in metric_cols if _clean(r[c]) is not None}
        out.append(cell)
    return out


def _summary_cell(s: Estimate) -> dict[str, Any]:
    """A main-table cell as ``clean_summary`` stores it (docs/results.schema.json)."""
    return {"mean": s.estimate, "ci_low": s.ci_low, "ci_high": s.ci_high, "se": s.se, "df": s.df,
            "seed_var": s.seed_var, "test_var": s.test_var, "n_seeds": s.n_seeds[0], "n_failed": s.n_failed,
            "n_utterances": s.n_utterances, "method": s.method, "resampled": s.resampled}


def write_results_json(path: str | Path, df: pd.DataFrame, runs: Sequence[Mapping[str, Any]],
                       datasets: Mapping[str, Mapping[str, Any]],
                       predictions: Callable[[str], Mapping[str, Any] | None] | None = None,
                       n_boot: int = N_BOOT) -> Path:
    """Write ``results.json`` (see the module doc) and return its path. ``datasets``:
    ``name -> {"task", "metrics", "headline"}`` as the report chose them."""
    path = Path(path)
    used = sorted({c[len("metric_"):] for c in df.columns if c.startswith("metric_") and df[c].notna().any()})
    metrics = {}
    for name in used:
        m = metric_info(name)
        metrics[name] = {"display": m.display, "task": m.task, "higher_is_better": m.higher_is_better,
                         "scale": m.scale, "decimals": m.decimals, "unit": m.unit, "label": m.label()}
    summary = []
    for dataset, info in datasets.items():
        d = df[df["dataset"] == dataset]
        for (variant, name), s in clean_stats(d, info["metrics"], dataset, predictions, n_boot).items():
            summary.append({"dataset": dataset, "variant": variant, "metric": name, **_clean(_summary_cell(s))})
    doc = {
        "schema": {"name": SCHEMA_NAME, "version": SCHEMA_VERSION},
        "generated_at": now_utc(),
        "runs": [_clean({"run_id": r["run_id"], "created_at": r.get("created_at"), "config_hash": r.get("config_hash"),
                         "config": r.get("config", {}), "provenance": r.get("provenance", {})}) for r in runs],
        "datasets": {k: _clean(dict(v)) for k, v in datasets.items()},
        "metrics": metrics,
        "cells": cells(df),
        "clean_summary": summary,
    }
    path.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    return path
