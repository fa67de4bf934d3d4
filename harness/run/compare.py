"""``mcer-bench compare RUN_DIR... --out DIR``: several runs in one report.

The result stores of the runs are merged into ``DIR/results.sqlite`` (rows, predictions,
trainings, artifacts and every run's config and provenance) and the report is built from it,
with the same fixed model looks as every single-run report.

Runs are comparable when they share the datasets (names and options), the corruption seed
(so every model saw the identical corrupted test sets) and the code version that computed
their rows. Otherwise the merge is refused with one line naming the keys that differ, unless
``--allow-incomparable`` is given. A model label that two runs trained differently (different
cells under the same label) is renamed ``label (run name)`` in the merged store, so that no
report mixes them; identical cells are stored once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any


class IncomparableRunsError(ValueError):
    """The runs differ in a key that makes their results incomparable."""


def _read(run_dir: Path) -> dict[str, Any]:
    from harness.store import ResultStore  # pandas: imported when a comparison runs, not at CLI start

    db = run_dir / "results.sqlite"
    if not db.is_file():
        raise FileNotFoundError(f"{run_dir} has no results.sqlite: is it a run directory made by 'mcer-bench run'?")
    store = ResultStore(db, read_only=True)
    runs = store.runs()
    with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as con:
        datasets = sorted({r[0] for r in con.execute("SELECT DISTINCT dataset FROM results")})
        cells = {r[0]: (r[1], r[2]) for r in con.execute("SELECT cell_key, variant, train_key FROM results")}
    dataset_cfg = set()
    seeds = set()
    for run in runs:
        cfg = run["config"]
        for d in cfg.get("datasets", []):
            dataset_cfg.add(json.dumps(d, sort_keys=True))
        seeds.add(cfg.get("run", {}).get("corruption_seed", 0))
    return {"dir": run_dir, "db": db, "runs": runs, "datasets": datasets, "dataset_config": sorted(dataset_cfg),
            "corruption_seeds": sorted(seeds), "code_versions": sorted(store.code_versions()), "cells": cells}


def comparability(infos: Sequence[dict[str, Any]]) -> list[str]:
    """The keys in which the runs differ: ``datasets``, ``corruption_seed``, ``code_version``,
    each with the value of every run (empty when they are comparable)."""
    problems = []
    for key, field, show in (("datasets", "dataset_config", "datasets"), ("corruption_seed", "corruption_seeds", None),
                             ("code_version", "code_versions", None)):
        values = [tuple(i[field]) for i in infos]
        if len(set(values)) > 1:
            shown = "; ".join(f"{i['dir']}: {', '.join(map(str, i[show or field])) or '-'}" for i in infos)
            problems.append(f"{key} differs ({shown})")
    return problems


def _renames(infos: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Per run: ``label -> new label`` for labels two runs trained differently."""
    trainings: dict[str, set[frozenset[str]]] = {}
    for info in infos:
        per_label: dict[str, set[str]] = {}
        for _, (variant, train_key) in info["cells"].items():
            per_label.setdefault(variant, set()).add(train_key)
        for label, keys in per_label.items():
            trainings.setdefault(label, set()).add(frozenset(keys))
    clash = {label for label, sets in trainings.items() if len(sets) > 1}
    return [{label: f"{label} ({info['dir'].name})" for label in clash if label in
             {v for v, _ in info["cells"].values()}} for info in infos]


def merge_stores(run_dirs: Sequence[str | Path], out: str | Path, allow_incomparable: bool = False) -> Path:
    """Merge the stores of ``run_dirs`` into ``out/results.sqlite`` (see the module doc);
    returns its path. Raises :class:`IncomparableRunsError` naming the differing keys."""
    dirs = [Path(d) for d in run_dirs]
    if len(dirs) < 2:
        raise ValueError(f"compare needs at least two run directories, got {len(dirs)}")
    out = Path(out)
    if any(out.resolve() == d.resolve() for d in dirs):
        raise ValueError(f"--out {out} is one of the compared run directories; choose a new directory")
    from harness.store import SCHEMA

    infos = [_read(d) for d in dirs]
    problems = comparability(infos)
    if problems and not allow_incomparable:
        raise IncomparableRunsError("runs are not comparable: " + "; ".join(problems)
                                    + " (pass --allow-incomparable to merge them anyway)")
    out.mkdir(parents=True, exist_ok=True)
    db = out / "results.sqlite"
    if db.exists():
        db.unlink()  # the merge is rebuilt from its sources every time
    renames = _renames(infos)
    with closing(sqlite3.connect(db.resolve().as_uri(), uri=True)) as con, con:
        con.executescript(SCHEMA)
        for info, rename in zip(infos, renames):
            con.execute("ATTACH DATABASE ? AS src", (f"{info['db'].resolve().as_uri()}?mode=ro",))
            for table in ("results", "trainings"):
                cols = [r[1] for r in con.execute(f"PRAGMA main.table_info({table})")]
                have = {r[1] for r in con.execute(f"PRAGMA src.table_info({table})")}  # an older store lacks some
                select = ", ".join(_renamed("variant", rename) if c == "variant" else c if c in have else "NULL"
                                   for c in cols)
                con.execute(f"INSERT OR IGNORE INTO main.{table} ({', '.join(cols)}) SELECT {select} "
                            f"FROM src.{table}")
            con.execute("INSERT OR IGNORE INTO main.predictions SELECT * FROM src.predictions")
            con.execute("INSERT OR IGNORE INTO main.artifacts SELECT * FROM src.artifacts")
            con.execute("INSERT OR IGNORE INTO main.runs SELECT * FROM src.runs")
            con.commit()
            con.execute("DETACH DATABASE src")
    return db


def _renamed(column: str, rename: dict[str, str]) -> str:
    if not rename:
        return column
    cases = " ".join(f"WHEN {_quote(old)} THEN {_quote(new)}" for old, new in sorted(rename.items()))
    return f"CASE {column} {cases} ELSE {column} END"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def first_report_config(run_dirs: Sequence[str | Path]) -> dict[str, Any]:
    """The ``[report]`` section of the first run directory's latest run (what the merged report uses)."""
    from harness.store import ResultStore

    runs = ResultStore(Path(run_dirs[0]) / "results.sqlite", read_only=True).runs()
    return dict(runs[-1]["config"].get("report", {})) if runs else {}


def cmd_compare(args: Any) -> int:
    """``mcer-bench compare``: merge, then build the report with the first run's ``[report]`` settings."""
    from harness.run.report_titles import registered_titles
    from reports.build import build_report

    db = merge_stores(args.run_dirs, args.out, allow_incomparable=args.allow_incomparable)
    names = ", ".join(Path(d).name for d in args.run_dirs)
    written = build_report(db.parent, metric=args.metric, report_config=first_report_config(args.run_dirs),
                           title=f"mcer-bench comparison: {names}", titles=registered_titles(db))
    for path in written["figures"] + written["tables"]:
        print(f"wrote {path}")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``compare`` on the CLI's subcommand parsers."""
    p = sub.add_parser("compare", help="merge several run directories into one report",
                       description="Merge the result stores of RUN_DIR... into OUT/results.sqlite and build one "
                                   "report with stable model colours. Refused (exit 2) when the runs differ in "
                                   "datasets, corruption seed or code version, unless --allow-incomparable.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="directories written by 'mcer-bench run'")
    p.add_argument("--out", required=True, help="directory of the merged store and its report")
    p.add_argument("--metric", help="headline metric (default: the first run's report.metric, else wf1 / mae)")
    p.add_argument("--allow-incomparable", action="store_true",
                   help="merge runs that differ in datasets, corruption seed or code version")
    p.set_defaults(func=cmd_compare)
