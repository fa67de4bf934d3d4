"""The cluster checks of the ``ray`` executor that need no cluster (issue #19): address parsing,
the fast reachability check, Ray's version error as one line, the node column of the store and
the report, and a source tree's own plugins. The real cluster: ``test_ray_cluster.py``."""

from __future__ import annotations

import socket
import sqlite3
import time

import pytest

from harness.run.cli import main
from harness.run.cluster import ClusterError, _version_mismatch, check_reachable, host_port, ray_address

SWEEP = """
[run]
name = "checks"
seeds = [0]
executor = "ray"

[[models]]
name = "text-only"
options = { hidden = 8 }

[[datasets]]
name = "synthetic"
options = { n_train = 4, n_valid = 2, n_test = 2, min_utts = 3, max_utts = 4, keep_raw = false }
"""


def _closed_loopback_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address,expected", [
    ("10.0.0.5:6379", ("10.0.0.5", 6379)),
    ("ray://head.example:10001", ("head.example", 10001)),
    ("[::1]:6379", ("::1", 6379)),
    ("auto", None),
])
def test_addresses_ray_accepts_are_parsed(address, expected):
    assert host_port(address) == expected


@pytest.mark.parametrize("address", ["head", "http://head:8265", "ray://head", "head:0", "head:99999", "a b:1"])
def test_malformed_addresses_are_refused_naming_the_value(address):
    with pytest.raises(ClusterError, match=f"RAY_ADDRESS={address!r} is not an address: expected HOST:PORT"):
        host_port(address)


def test_ray_address_comes_from_the_environment():
    assert ray_address({"RAY_ADDRESS": " 10.0.0.5:6379 "}) == "10.0.0.5:6379"
    assert ray_address({"RAY_ADDRESS": "local"}) is None
    assert ray_address({}) is None


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_address_nobody_answers_on_fails_at_once_naming_it(scheme):
    address = f"{scheme}127.0.0.1:{_closed_loopback_port()}"
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=f"cannot reach the Ray cluster at {address} \\(RAY_ADDRESS\\): "):
        check_reachable(address)
    assert time.monotonic() - t0 < 2  # refused at once; a silent host costs CONNECT_TIMEOUT_S (5 s), not minutes


def test_ray_version_error_becomes_one_line_with_both_versions():
    ray_text = ("Version mismatch: The cluster was started with:\n    Ray: 2.60.0\n    Python: 3.11.7\n"
                "This process on node 10.0.0.7 was started with:\n    Ray: 2.59.0\n    Python: 3.11.7\n")
    err = _version_mismatch(RuntimeError(ray_text), "10.0.0.5:6379")
    assert isinstance(err, ClusterError) and "\n" not in str(err)
    assert ("the Ray cluster at 10.0.0.5:6379 refuses this driver: the cluster runs Ray 2.60.0 on Python 3.11.7, "
            "this driver Ray 2.59.0 on Python 3.11.7") in str(err)
    assert _version_mismatch(RuntimeError("something else"), "x:1") is None


def test_run_with_an_unreachable_cluster_exits_2_in_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(SWEEP)
    address = f"127.0.0.1:{_closed_loopback_port()}"
    monkeypatch.setenv("RAY_ADDRESS", address)
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mcer-bench: error: cannot reach the Ray cluster at {address}")
    assert not out.exists()


def test_old_store_gains_the_node_column_and_keeps_its_rows(tmp_path):
    from harness.store import ResultStore

    db = tmp_path / "results.sqlite"
    with sqlite3.connect(db) as con:  # the trainings table as stores were written before nodes were recorded
        con.execute("CREATE TABLE trainings (train_key TEXT PRIMARY KEY, model TEXT NOT NULL, variant TEXT NOT NULL, "
                    "dataset TEXT NOT NULL, train_condition TEXT NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL, "
                    "error TEXT, fit TEXT NOT NULL, checkpoint TEXT, params INTEGER, device TEXT NOT NULL, "
                    "wall_time_s REAL NOT NULL, created_at TEXT NOT NULL)")
        con.execute("INSERT INTO trainings VALUES ('old', 'm', 'm', 'd', 'clean', 0, 'ok', NULL, '{}', NULL, 1, 'cpu', "
                    "1.0, 't')")
    store = ResultStore(db)
    store.add_training({"train_key": "new", "model": "m", "variant": "m", "dataset": "d", "train_condition": "clean",
                        "seed": 1, "status": "ok", "error": None, "fit": {}, "checkpoint": None, "params": 1,
                        "device": "cpu", "wall_time_s": 1.0, "created_at": "t", "node": "host/10.0.0.7#abcdef12"})
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT train_key, node FROM trainings ORDER BY train_key").fetchall() == [
            ("new", "host/10.0.0.7#abcdef12"), ("old", None)]


def test_report_lists_the_node_of_each_training_cell():
    import pandas as pd

    from reports.build import _training_nodes

    trainings = pd.DataFrame([
        {"variant": "b", "dataset": "d", "train_condition": "clean", "seed": 0, "status": "ok",
         "node": "h1/10.0.0.7#aa", "device": "cpu:1threads", "wall_time_s": 2.0},
        {"variant": "a", "dataset": "d", "train_condition": "clean", "seed": 1, "status": "failed",
         "node": None, "device": "cpu:1threads", "wall_time_s": 0.5}])
    lines = _training_nodes(trainings)
    assert lines[1] == "### Where each training cell ran"
    assert lines[-2:] == ["| a | d | clean | 1 | failed | not recorded | cpu:1threads | 0.5 |",
                          "| b | d | clean | 0 | ok | h1/10.0.0.7#aa | cpu:1threads | 2.0 |"]


def test_rows_name_the_host_outside_ray(tmp_path):
    from harness.runtime import describe_node

    assert describe_node() == socket.gethostname()


def test_a_source_tree_declares_its_own_plugins_in_pyproject():
    from harness.registry import ENTRY_POINT_GROUP, source_tree_entry_points

    found = {(ep.name, ep.value, ep.group) for ep in source_tree_entry_points()}
    assert found == {("mcer", "mcer", ENTRY_POINT_GROUP), ("baselines", "baselines", ENTRY_POINT_GROUP),
                     ("corruptions", "corruptions", ENTRY_POINT_GROUP)}


def test_an_uninstalled_copy_of_the_tree_registers_its_own_plugins(tmp_path):
    """What a Ray node without mcer-bench installed does with the tree a job ships it."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for package in ("harness", "mcer", "baselines", "corruptions"):
        shutil.copytree(root / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "pyproject.toml", tmp_path)
    hide_install = (  # this interpreter's own mcer-bench distribution becomes invisible
        "import importlib.metadata as md\n"
        "real = md.entry_points\n"
        "md.entry_points = lambda **kw: [ep for ep in real(**kw)\n"
        "    if ep.dist is None or (ep.dist.metadata['Name'] or '').lower() != 'mcer-bench']\n"
        "import harness, mcer\n"
        "from harness import MODELS, CORRUPTIONS\n"
        "print(harness.__file__, mcer.__file__, 'text-only' in MODELS, 'feature-gaussian' in CORRUPTIONS)\n")
    done = subprocess.run([sys.executable, "-c", hide_install], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    harness_file, mcer_file, has_model, has_corruption = done.stdout.split()
    assert harness_file.startswith(str(tmp_path)) and mcer_file.startswith(str(tmp_path))
    assert (has_model, has_corruption) == ("True", "True")
