"""The ``ray`` executor on a real multi-process Ray cluster (issue #19), confined to loopback.

A head and a worker node are started with ``ray start`` - separate process trees, every
address 127.0.0.1 (see ``loopback_ray.py`` for how, and why a private network namespace is
needed for that). The sweep goes through the README's command, ``ray job submit
--working-dir . -- python -m harness run ...`` from the repository root, and must give the
local executor's rows; a worker node killed mid-sweep costs no cell and duplicates none; a
job whose driver is killed mid-sweep resumes; each cluster error of a driver
(unreachable, other Ray version, no GPU, ``--out`` not shared) is one line and exit status 2,
before anything is written.

Time budget: each step has its own timeout (node start 240 s, a job 400 s, an error 120 s);
the module takes 3-5 minutes on a loaded 2-core machine. Without ray, or where no network
namespace can be made, every test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loopback_ray import BIN, LoopbackCluster, why_unavailable
from tiny_sweeps import seeded_sweep_toml

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parent.parent
# seeded_sweep_toml with 4 seeds: 12 cells in 4 training cells. Two nodes of one CPU each run two
# at a time, so both nodes get work and a kill finds a cell on the worker.
SEEDS = (0, 1, 2, 3)
CELLS, TRAININGS = 12, 4
ROW = "cell_key, variant, seed, corruption, severity, status, metrics, n_utterances, best_epoch"


def write_sweep(path: Path, executor: str = "ray", device: str = "cpu") -> Path:
    path.write_text(seeded_sweep_toml("cluster", SEEDS, executor, device))
    return path


def result_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return sorted(con.execute(f"SELECT {ROW} FROM results"))


def store_counts(db: Path) -> tuple[int, int, int, int]:
    """(result rows, distinct cells, training rows, distinct trainings)."""
    with sqlite3.connect(db) as con:
        return (*con.execute("SELECT COUNT(*), COUNT(DISTINCT cell_key) FROM results").fetchone(),
                *con.execute("SELECT COUNT(*), COUNT(DISTINCT train_key) FROM trainings").fetchone())


@pytest.fixture(scope="module")
def cluster():
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(f"no loopback Ray cluster here: {reason}")
    with LoopbackCluster(cpus_per_node=1) as c:
        c.add_worker("worker")
        yield c


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory):
    """The rows of the same sweep on the local executor (a fresh interpreter, one thread)."""
    tmp = tmp_path_factory.mktemp("local")
    cfg = write_sweep(tmp / "sweep.toml", executor="local")
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(cfg), "--out", str(tmp / "run"), "--quiet",
                           "--no-report"], capture_output=True, text=True, timeout=300,
                          env={**LoopbackCluster.base_env(), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    return result_rows(tmp / "run" / "results.sqlite")


def submit(cluster: LoopbackCluster, cfg: Path, out: Path, *extra: str, runtime_env: str | None = None) -> list[str]:
    """The README's command, run from the repository root inside the cluster's namespace;
    ``runtime_env``: a ``--runtime-env-json`` for the job (its driver and tasks)."""
    env = [f"--runtime-env-json={runtime_env}"] if runtime_env else []
    return [str(BIN / "ray"), "job", "submit", f"--address={cluster.dashboard}", "--working-dir=.", *env, "--",
            "python", "-m", "harness", "run", str(cfg), "--out", str(out), "--quiet", *extra]


def test_documented_command_gives_the_local_rows_and_names_each_node(cluster, local_rows, tmp_path):
    from harness.provenance import code_version

    cfg, out = write_sweep(tmp_path / "sweep.toml"), tmp_path / "run"
    t0 = time.monotonic()
    job = cluster.run(submit(cluster, cfg, out), timeout_s=400, cwd=REPO)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    elapsed = time.monotonic() - t0
    db = out / "results.sqlite"
    assert store_counts(db) == (CELLS, CELLS, TRAININGS, TRAININGS)
    assert result_rows(db) == local_rows, f"job took {elapsed:.0f} s"
    with sqlite3.connect(db) as con:
        nodes = {r[0] for r in con.execute("SELECT node FROM trainings")}
        versions = {r[0] for r in con.execute("SELECT DISTINCT code_version FROM results")}
    # both nodes trained (each has one CPU, four cells were pending): two node ids, one address
    assert len(nodes) == 2 and all("/127.0.0.1#" in n for n in nodes), nodes
    # the job ran the shipped copy (no .git: the package-version name), byte for byte this tree's code
    (version,) = versions
    assert version.startswith("mcer-bench-") and version.split("+src.")[1] == code_version().split("+src.")[1]
    report = (out / "report.md").read_text()
    assert "### Where each training cell ran" in report and all(n in report for n in nodes)
    assert cluster.foreign_sockets() == []


def test_driver_errors_are_one_line_exit_2_and_write_nothing(cluster, tmp_path):
    """Point 2 of the issue, one case per error, each through a driver that joins by RAY_ADDRESS."""
    import ray

    cpu, gpu = write_sweep(tmp_path / "cpu.toml"), write_sweep(tmp_path / "gpu.toml", device="cuda")
    older = "2.0.0" if ray.__version__ != "2.0.0" else "1.0.0"
    driver = [sys.executable, "-m", "harness", "run"]
    as_older_ray = [sys.executable, "-c", f"import sys, ray; ray.__version__ = {older!r}; "
                    "from harness.run.cli import main; sys.exit(main(sys.argv[1:]))", "run"]
    cases = {
        "unreachable GCS address": (driver, cpu, "127.0.0.1:6390", ["cannot reach the Ray cluster at 127.0.0.1:6390"]),
        "unreachable Ray Client address": (driver, cpu, "ray://127.0.0.1:10090",
                                           ["cannot reach the Ray cluster at ray://127.0.0.1:10090"]),
        "driver of another Ray version": (as_older_ray, cpu, cluster.address,
                                          [f"the Ray cluster at {cluster.address} refuses this driver",
                                           f"Ray {ray.__version__} on Python", f"this driver Ray {older} on Python"]),
        "no GPU in the cluster": (driver, gpu, cluster.address,
                                  [f"the Ray cluster at {cluster.address} has no GPU", "run.device = 'cuda'"]),
    }
    for case, (argv, cfg, address, expect) in cases.items():
        out = tmp_path / case.replace(" ", "-")
        t0 = time.monotonic()
        done = cluster.run([*argv, str(cfg), "--out", str(out), "--quiet"], timeout_s=120, RAY_ADDRESS=address)
        took = time.monotonic() - t0
        errors = [line for line in done.stderr.splitlines() if line.startswith("mcer-bench: error:")]
        assert done.returncode == 2, (case, done.stderr[-2000:])
        assert len(errors) == 1 and all(e in errors[0] for e in expect), (case, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, (case, done.stderr[-2000:])
        assert not out.exists(), case
        assert took < 60, (case, took)  # Ray alone: 30 s (ray://) or minutes (GCS) before a traceback


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def job_driver(pid: int, out: Path) -> bool:
    """Whether ``pid`` is the driver a job started for ``--out out`` (``python -m harness run ...``;
    Ray starts it in a session of its own, and ``out`` is unique to the test)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    return argv[1:4] == ["-m", "harness", "run"] and str(out) in argv


def process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from /proc (``T``: stopped), or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def test_killed_job_driver_resumes_with_the_local_rows(cluster, local_rows, tmp_path):
    """The job's driver (on the head) is SIGKILLed once cells are stored; the same command with
    --resume completes the run, one row per cell, as a local run resumes.

    The kill must land mid-sweep whatever the machine's speed: the driver is made to stop itself
    (SIGSTOP, the fault point ``store-after-commit``) right after its first commit, and is killed
    while stopped. Polling the store instead lost the race on a fast machine: the 12 cells were
    all stored between two polls."""
    cfg, out = write_sweep(tmp_path / "sweep.toml"), tmp_path / "run"
    db = out / "results.sqlite"
    stop_after_first_commit = json.dumps({"env_vars": {"MCER_BENCH_FAULT": "store-after-commit:1:stop"}})
    job = cluster.popen(submit(cluster, cfg, out, "--no-report", runtime_env=stop_after_first_commit), cwd=REPO)
    deadline = time.monotonic() + 300
    drivers: list[int] = []
    while time.monotonic() < deadline and job.poll() is None:
        drivers = [pid for pid in all_pids() if job_driver(pid, out)]
        if len(drivers) == 1 and process_state(drivers[0]) == "T":
            break
        time.sleep(0.2)
    assert job.poll() is None and len(drivers) == 1, (drivers, job.poll())  # stopped mid-sweep, the one driver
    assert process_state(drivers[0]) == "T", "the driver never stopped after its first commit"
    os.kill(drivers[0], signal.SIGKILL)
    output, _ = job.communicate(timeout=120)
    assert job.returncode != 0 and "failed" in output
    stored = store_counts(db)[0]
    print(f'stored when killed: {stored} of {CELLS}')
    assert 1 <= stored < CELLS
    again = cluster.run(submit(cluster, cfg, out, "--no-report", "--resume"), timeout_s=400, cwd=REPO)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"({stored} already stored)" in again.stdout + again.stderr
    assert store_counts(db) == (CELLS, CELLS, TRAININGS, TRAININGS)
    assert result_rows(db) == local_rows


@pytest.mark.skipif(os.geteuid() != 0, reason="a node with its own view of a directory needs a mount namespace (root)")
def test_out_not_seen_by_every_node_is_refused_naming_it(cluster, tmp_path):
    private = tmp_path / "private"  # the "blind" node sees an empty tmpfs here
    private.mkdir()
    cluster.add_worker("blind", private_dir=private)
    try:
        cfg, out = write_sweep(tmp_path / "sweep.toml"), private / "run"
        done = cluster.run([sys.executable, "-m", "harness", "run", str(cfg), "--out", str(out), "--quiet"],
                           timeout_s=200, RAY_ADDRESS=cluster.address)
        errors = [line for line in done.stderr.splitlines() if line.startswith("mcer-bench: error:")]
        assert done.returncode == 2, done.stderr[-2000:]
        assert len(errors) == 1 and f"--out {out} is not on storage every Ray node sees: 1 of 3 node(s)" in errors[0]
        assert not out.exists()
    finally:
        cluster.kill_node("blind")


def test_worker_node_killed_mid_sweep_loses_and_duplicates_no_cell(cluster, local_rows, tmp_path):
    cfg, out = write_sweep(tmp_path / "sweep.toml"), tmp_path / "run"
    job = cluster.popen(submit(cluster, cfg, out, "--no-report"), cwd=REPO)
    try:
        title = cluster.kill_when_running("worker", "_train_and_evaluate", timeout_s=300)
        output, _ = job.communicate(timeout=400)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, output[-4000:]
    assert title.startswith("ray::_train_and_evaluate")
    assert "will be retried" in output  # Ray's own account of the retry, in the job's log
    db = out / "results.sqlite"
    assert store_counts(db) == (CELLS, CELLS, TRAININGS, TRAININGS)
    assert result_rows(db) == local_rows
