"""Item 1, crashes: SIGKILL at named points of a sweep (MCER_BENCH_FAULT, harness/faults.py),
then resume. Every cell ends with exactly one row, no partial row, no corrupt checkpoint used,
and the stored metrics equal those of a run that was never interrupted."""

from __future__ import annotations

import os
import signal
import time

import pytest

from harness.checkpoint import load_checkpoint
from harness.faults import parse

from ._helpers import CELLS, TALLY, assert_store_sound, cli_run, connect, count, result_rows, write_sweep

pytestmark = pytest.mark.faults

# Each chain is a sequence of runs on one directory: every run but the last is killed at its
# fault (point:N counts arrivals within that run); "rows" is the row count the kill leaves.
# The sweep: 2 trainings x 3 cells, 4 optimiser steps per epoch, 2 epochs (8 steps a training).
CHAINS = {
    "training": [
        ("train-step:5", 0),  # epoch 2 of the first training
        ("checkpoint-tmp-written:1", 0),  # first checkpoint: temp file written, not renamed
        ("checkpoint-before-digest:1", 0),  # checkpoint in place, its digest not yet
        ("train-step:11", 3),  # the first training redone and evaluated; the second one mid-epoch
    ],
    "store": [
        ("store-before-commit:2", 1),  # second row inserted, not committed
        ("eval-cell:2", 3),  # restored from the checkpoint; killed between evaluation cells
        ("store-after-commit:2", 5),  # second training: killed right after a commit
        ("store-before-commit:1", 5),  # the last row inserted, not committed
    ],
}


@pytest.mark.parametrize("chain", list(CHAINS))
def test_kill_chain_then_resume(tmp_path, chain, reference_run):
    cfg = write_sweep(tmp_path / "sweep.toml")
    out = tmp_path / "run"
    db = out / "results.sqlite"
    for fault, rows in CHAINS[chain]:
        parse(fault)  # a typo in the spec would otherwise silently never fire
        done = cli_run(cfg, out, "--resume", fault=fault)
        assert done.returncode == -signal.SIGKILL, f"{fault}: not killed (rc {done.returncode}): {done.stderr[-2000:]}"
        assert count(db) == rows, fault
        TALLY["kill points survived"] += 1  # counted once the next run below has resumed cleanly
    done = cli_run(cfg, out, "--resume")
    assert done.returncode == 0, done.stderr
    assert_store_sound(db, CELLS)
    assert result_rows(db) == reference_run  # identical metrics, exactly
    with connect(db) as con:
        trainings = con.execute("SELECT status, checkpoint FROM trainings").fetchall()
    assert len(trainings) == 2 and {s for s, _ in trainings} == {"ok"}
    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir() if p.name.startswith(".")) == []  # no temp file left
    for _, rel in trainings:
        load_checkpoint(out / rel)  # verifies the digest and loads weights only


def test_sigkill_at_an_unplanned_moment_then_resume(tmp_path, reference_run):
    """The timing-based variant (no hook): killed by the clock once a few rows are stored.

    Twelve seeds, so that the kill still lands mid-sweep on a fast machine: the 12 rows of four
    seeds were seen stored within 0.2 s of each other, a window a loaded poller can miss."""
    seeds = tuple(range(12))
    total = len(seeds) * CELLS // 2  # CELLS is the rows of the default two seeds
    cfg = write_sweep(tmp_path / "sweep.toml", seeds=seeds)
    out = tmp_path / "run"
    db = out / "results.sqlite"
    proc = cli_run(cfg, out, wait=False)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and count(db) < 5:
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert count(db) < total
    TALLY["kill points survived"] += 1
    done = cli_run(cfg, out, "--resume")
    assert done.returncode == 0, done.stderr
    assert_store_sound(db, total)
    rows = result_rows(db)
    assert [r for r in rows if r[2] in (0, 1)] == reference_run
    assert {r[5] for r in rows} == {"ok"}


def _pool_workers(pid: int) -> set[int]:
    """PIDs of the multiprocessing workers (spawn_main) among ``pid``'s children."""
    kids: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids |= {int(x) for x in fh.read().split()}
    except FileNotFoundError:
        return set()
    out = set()
    for k in kids:
        try:
            with open(f"/proc/{k}/cmdline", "rb") as fh:
                if b"spawn_main" in fh.read():
                    out.add(k)
        except FileNotFoundError:
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_processes_executor_worker_killed_then_resume(tmp_path, reference_run):
    """A pool worker SIGKILLed mid-training (as the kernel's OOM killer would): the driver stops
    with a clear message naming the cell, keeps what was stored, and --resume completes."""
    cfg = write_sweep(tmp_path / "sweep.toml", executor="processes")
    out = tmp_path / "run"
    db = out / "results.sqlite"
    done = cli_run(cfg, out, fault="train-step:5")  # each worker kills itself in its first training
    assert done.returncode == 1, done.stderr[-2000:]
    assert "a worker process died while running training cell 'text-only'" in done.stderr
    assert "--resume" in done.stderr and "Traceback" not in done.stderr
    assert count(db) < CELLS
    TALLY["kill points survived"] += 1
    done = cli_run(cfg, out, "--resume")
    assert done.returncode == 0, done.stderr
    assert_store_sound(db, CELLS)
    assert result_rows(db) == reference_run  # the pool gives the local executor's numbers


def test_processes_executor_driver_killed_takes_its_workers_with_it(tmp_path, reference_run):
    cfg = write_sweep(tmp_path / "sweep.toml", seeds=(0, 1, 2, 3), executor="processes")
    out = tmp_path / "run"
    proc = cli_run(cfg, out, wait=False)
    deadline, workers = time.time() + 120, set()
    while time.time() < deadline and proc.poll() is None and len(workers) < 2:
        workers = _pool_workers(proc.pid)
        time.sleep(0.05)
    assert proc.poll() is None and len(workers) >= 2, "the pool never started two workers"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30  # a worker still importing dies once its start-up sees the driver gone
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "pool workers outlived their killed driver"
    proc.communicate(timeout=30)  # no survivor holds the driver's pipes either
    TALLY["kill points survived"] += 1
    done = cli_run(cfg, out, "--resume")
    assert done.returncode == 0, done.stderr
    assert_store_sound(out / "results.sqlite", 4 * 3)
    assert [r for r in result_rows(out / "results.sqlite") if r[2] in (0, 1)] == reference_run
