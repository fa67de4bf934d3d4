"""Sweeps survive SIGKILL (resume gives exactly one row per cell) and Ray gives the local rows."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

TINY = """
[run]
name = "kill"
seeds = [0, 1]
executor = "{executor}"

[train]
epochs = 3

[[models]]
name = "text-only"
options = {{ hidden = 8 }}

[[models]]
name = "audio-only"
options = {{ hidden = 8 }}

[[datasets]]
name = "synthetic"
options = {{ n_train = 6, n_valid = 2, n_test = 2, min_utts = 3, max_utts = 5, keep_raw = false }}

[[corruptions]]
name = "feature-gaussian"
severities = [1, 3, 5]
options = {{ modality = "audio" }}
"""
CELLS = 2 * 2 * 4  # models x seeds x (clean + 3 severities)


def _run(cfg, out, *extra, wait=True):
    cmd = [sys.executable, "-m", "harness", "run", str(cfg), "--out", str(out), "--quiet", "--no-report", *extra]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _count(db):
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=30) as con:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _metrics(db):
    with sqlite3.connect(db) as con:
        return sorted(con.execute("SELECT cell_key, variant, seed, corruption, severity, status, metrics FROM results"))


@pytest.mark.faults
@pytest.mark.parametrize("kill_after_rows", [0, 5])
def test_sigkill_then_resume_gives_exactly_one_row_per_cell(tmp_path, kill_after_rows):
    cfg = tmp_path / "s.toml"
    cfg.write_text(TINY.format(executor="local"))
    out = tmp_path / "run"
    db = out / "results.sqlite"
    proc = _run(cfg, out, wait=False)
    deadline = time.time() + 300
    # kill_after_rows=0: kill while the first model is still training (no row yet, store exists)
    while time.time() < deadline and proc.poll() is None:
        if (kill_after_rows == 0 and db.exists()) or (kill_after_rows and _count(db) >= kill_after_rows):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _count(db)
    assert before < CELLS
    done = _run(cfg, out, "--resume")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT cell_key, status FROM results").fetchall()
        dupes = con.execute("SELECT variant, seed, corruption, severity, COUNT(*) c FROM results "
                            "GROUP BY variant, seed, corruption, severity HAVING c > 1").fetchall()
    assert len(rows) == CELLS and len({k for k, _ in rows}) == CELLS
    assert dupes == []
    assert {s for _, s in rows} == {"ok"}


@pytest.mark.slow
def test_ray_executor_gives_the_same_rows_as_local(tmp_path):
    local_cfg, ray_cfg = tmp_path / "local.toml", tmp_path / "ray.toml"
    local_cfg.write_text(TINY.format(executor="local"))
    ray_cfg.write_text(TINY.format(executor="ray"))
    a = _run(local_cfg, tmp_path / "local")
    assert a.returncode == 0, a.stderr
    env_cpus = {**os.environ, "RAY_NUM_CPUS": "2"}
    b = subprocess.run([sys.executable, "-m", "harness", "run", str(ray_cfg), "--out", str(tmp_path / "ray"), "--quiet",
                        "--no-report"], capture_output=True, text=True, timeout=600, env=env_cpus)
    assert b.returncode == 0, b.stderr
    local_rows = _metrics(tmp_path / "local" / "results.sqlite")
    ray_rows = _metrics(tmp_path / "ray" / "results.sqlite")
    assert len(local_rows) == CELLS
    assert local_rows == ray_rows
