"""Item 5, concurrency: a second ``mcer-bench run`` on a busy run directory is refused by the
lock with a clear message and changes nothing; many writers of overlapping cells leave exactly
one whole row per cell; Ray workers finishing together lose and duplicate nothing."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from loopback_ray import Namespace, why_unavailable

from harness.store import ResultStore

from ._helpers import CELLS, assert_store_sound, cli_run, connect, count, result_rows, write_sweep

pytestmark = pytest.mark.faults


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def test_second_run_on_a_busy_directory_is_refused_and_changes_nothing(tmp_path, reference_run):
    cfg = write_sweep(tmp_path / "sweep.toml")
    out = tmp_path / "run"
    first = cli_run(cfg, out, fault="train-step:3:stop", wait=False)  # freezes mid-training, lock held
    try:
        deadline = time.time() + 60
        while not _stopped(first.pid):
            assert first.poll() is None and time.time() < deadline, "the first run never reached its stop point"
            time.sleep(0.05)
        before = sorted(p.name for p in out.iterdir())
        second = cli_run(cfg, out, "--resume")
        assert second.returncode == 2
        assert f"run directory {out} is in use by process {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert sorted(p.name for p in out.iterdir()) == before and count(out / "results.sqlite") == 0
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert_store_sound(out / "results.sqlite", CELLS)
    assert result_rows(out / "results.sqlite") == reference_run


def _row(key: str, writer: str) -> dict:
    return {"cell_key": key, "train_key": "t", "model": "m", "variant": writer, "model_options": {},
            "dataset": "d", "train_condition": "clean", "seed": 0, "corruption": "clean",
            "corruption_options": {"name": "clean"}, "severity": 0, "parameter": None, "parameter_value": None,
            "schedule": "stationary", "defense": "none", "split": "test", "status": "ok", "error": None,
            "metrics": {"writer": writer}, "n_utterances": 1, "best_epoch": 1, "config_hash": "h",
            "code_version": "v", "package_versions": {}, "device": "cpu", "wall_time_s": 0.0, "created_at": writer}


KEYS = [f"cell{i:02d}" for i in range(24)]


def _writer(db: str, name: str, barrier: object) -> None:
    store = ResultStore(db)
    keys = list(KEYS)
    random.Random(name).shuffle(keys)
    barrier.wait()  # type: ignore[attr-defined]
    for key in keys:
        store.add_result(_row(key, name), {"uids": [name], "targets": np.array([0]), "outputs": np.array([[0.5]])})


def _process(db: str, name: str, barrier: object) -> None:
    threads = [threading.Thread(target=_writer, args=(db, f"{name}-t{i}", barrier)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_many_writers_of_the_same_cells_leave_one_whole_row_each(tmp_path):
    db = str(tmp_path / "results.sqlite")
    ResultStore(db)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4 * 2)
    procs = [ctx.Process(target=_process, args=(db, f"p{i}", barrier)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 4
    assert_store_sound(Path(db), len(KEYS), labelled=False)
    with connect(Path(db)) as con:
        rows = con.execute("SELECT r.variant, r.metrics, r.created_at, p.uids FROM results r "
                           "JOIN predictions p USING (cell_key)").fetchall()
    # each row, and its predictions, come whole from one writer: nothing interleaved
    assert all(json.loads(m)["writer"] == v == c == json.loads(u)[0] for v, m, c, u in rows)


@pytest.mark.slow
def test_ray_workers_finishing_together_lose_and_duplicate_nothing(tmp_path, reference_run):
    # A local Ray instance asks the cloud metadata address (169.254.169.254) which cloud it is on,
    # even with usage statistics off; in a namespace with only loopback that finds no route.
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(f"a local Ray instance runs here only in a private network namespace: {reason}")
    cfg = write_sweep(tmp_path / "sweep.toml", seeds=(0, 1, 2, 3), executor="ray")
    out = tmp_path / "run"
    with Namespace() as ns:
        done = cli_run(cfg, out, within=ns.prefix, RAY_NUM_CPUS="2")
    assert done.returncode == 0, done.stderr
    db = out / "results.sqlite"
    assert_store_sound(db, 4 * 3)
    rows = result_rows(db)
    assert {r[5] for r in rows} == {"ok"}
    assert [r for r in rows if r[2] in (0, 1)] == reference_run  # the same numbers as the local executor
    with connect(db) as con:
        assert con.execute("SELECT COUNT(*), COUNT(DISTINCT train_key) FROM trainings").fetchone() == (4, 4)
