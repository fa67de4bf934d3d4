"""Shared pieces of the fault-injection suite: the tally behind its summary line, the tiny
sweep it attacks, subprocess runs of ``mcer-bench run`` and store inspection."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fixtures_datasets import Evil  # noqa: F401 - re-exported for the fault tests
from hypothesis import HealthCheck, settings
from tiny_sweeps import seeded_sweep_toml

# Read by tests/faults/conftest.py's terminal summary: kill points survived, fuzzed inputs
# tried, malicious files refused, rows lost (expected rows minus rows found, summed).
TALLY: Counter[str] = Counter()


def fuzz_settings(max_examples: int) -> settings:
    """Bounded, reproducible hypothesis settings (no example database written to the repo)."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


CELLS = 6  # seeded_sweep_toml's rows for the default two seeds


def write_sweep(path: Path, seeds: tuple[int, ...] = (0, 1), executor: str = "local") -> Path:
    path.write_text(seeded_sweep_toml("faults", seeds, executor))
    return path


def env(**extra: str) -> dict[str, str]:
    """The environment of a sweep subprocess: one torch thread (2 cores, shared), no fault unless given."""
    out = {k: v for k, v in os.environ.items() if k != "MCER_BENCH_FAULT"}
    out.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, **extra)
    return out


def cli_run(cfg: Path, out: Path, *extra: str, fault: str | None = None, wait: bool = True,
            cwd: Path | None = None, within: list[str] | None = None, **env_extra: str) -> Any:
    """``mcer-bench run CFG --out OUT --resume --quiet --no-report`` in a fresh interpreter (every
    run of the suite continues its directory, as a restart after a crash does); ``within``: a
    command prefix, e.g. ``nsenter`` into a private network namespace."""
    resume = [] if "--resume" in extra else ["--resume"]
    cmd = [*(within or []), sys.executable, "-m", "harness", "run", str(cfg), "--out", str(out), *resume, "--quiet",
           "--no-report", *extra]
    e = env(**({"MCER_BENCH_FAULT": fault} if fault else {}), **env_extra)
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=e, cwd=cwd)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e, cwd=cwd)


@contextlib.contextmanager
def connect(db: Path) -> Iterator[sqlite3.Connection]:
    con = sqlite3.connect(db, timeout=30)
    try:
        yield con
    finally:
        con.close()


def count(db: Path, table: str = "results") -> int:
    if not db.exists():
        return 0
    with connect(db) as con:
        try:
            return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:  # created, schema not yet written
            return 0


def result_rows(db: Path) -> list[tuple]:
    """What must not change between runs: key, labels, status, metrics JSON (exact), sizes."""
    with connect(db) as con:
        return sorted(con.execute("SELECT cell_key, variant, seed, corruption, severity, status, metrics, "
                                  "n_utterances, best_epoch FROM results"))


def assert_store_sound(db: Path, expected_cells: int, labelled: bool = True) -> None:
    """Exactly one row per cell, no duplicate cell, every ok row complete with its predictions.

    ``labelled``: also no two rows for one (variant, seed, corruption, severity).
    """
    with connect(db) as con:
        n = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        keys = con.execute("SELECT COUNT(DISTINCT cell_key) FROM results").fetchone()[0]
        dupes = con.execute("SELECT variant, seed, corruption, severity, COUNT(*) c FROM results "
                            "GROUP BY variant, seed, corruption, severity HAVING c > 1").fetchall()
        orphans = con.execute("SELECT COUNT(*) FROM results r LEFT JOIN predictions p USING (cell_key) "
                              "WHERE r.status = 'ok' AND (p.cell_key IS NULL OR r.metrics = '{}')").fetchone()[0]
        stray = con.execute("SELECT COUNT(*) FROM predictions p LEFT JOIN results r USING (cell_key) "
                            "WHERE r.cell_key IS NULL").fetchone()[0]
    TALLY["rows lost"] += max(0, expected_cells - n)
    assert (n, keys, dupes if labelled else [], orphans, stray) == (expected_cells, expected_cells, [], 0, 0)


@contextlib.contextmanager
def registered(registry: Any, name: str, obj: Any, **metadata: Any) -> Iterator[Any]:
    """Register ``obj`` as ``name`` for the duration of a test, then remove it again."""
    registry.register(name, **metadata)(obj)
    try:
        yield obj
    finally:
        registry._entries.pop(name, None)


def sweep_data(seeds: tuple[int, ...] = (0, 1), **changes: Any) -> dict[str, Any]:
    """The fault sweep as a config dict; ``changes`` replace top-level sections."""
    import tomllib

    data = tomllib.loads(seeded_sweep_toml("faults", seeds))
    data.update(changes)
    return data


def sweep_in_process(data: dict[str, Any], out: Path) -> Any:
    """Validate ``data`` and run it with :func:`harness.run.driver.run_sweep` in this process."""
    from harness.run.config import parse_config
    from harness.run.driver import run_sweep

    return run_sweep(parse_config(data), out, raw_config=data, progress=False, log=lambda _msg: None, resume=True)
