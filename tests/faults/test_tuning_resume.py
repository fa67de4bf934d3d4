"""Tuning under kills: a search killed mid-trial resumes with one row per trial, and proposes
exactly the trials an uninterrupted search proposed."""

from __future__ import annotations

import signal

import pytest

from harness.faults import parse

from ._helpers import TALLY, cli_run, connect

pytestmark = pytest.mark.faults

TUNED_SWEEP = """
[run]
name = "tune-faults"
seeds = [0]

[train]
epochs = 2
batch_size = 4

[tune]
trials = 4
seed = 5

[[models]]
name = "text-only"

[[models]]
name = "late-fusion"

[[datasets]]
name = "synthetic"
options = { n_train = 4, n_valid = 2, n_test = 2, min_utts = 3, max_utts = 4, keep_raw = false }

[deployment]
enabled = false
"""


def _trials(db):
    with connect(db) as con:
        return con.execute("SELECT variant, trial, params, value, status FROM trials ORDER BY variant, trial").fetchall()


def test_killed_search_resumes_with_one_row_per_trial(tmp_path):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(TUNED_SWEEP)
    reference = tmp_path / "reference"
    done = cli_run(cfg, reference)
    assert done.returncode == 0, done.stderr
    expected = _trials(reference / "results.sqlite")
    assert len(expected) == 8 and {r[4] for r in expected} == {"ok"}

    out = tmp_path / "run"
    db = out / "results.sqlite"
    stored = []
    for fault in ("train-step:13", "train-step:13", "train-step:13"):  # mid-trial, three times
        parse(fault)
        done = cli_run(cfg, out, fault=fault)
        assert done.returncode == -signal.SIGKILL, f"{fault}: not killed (rc {done.returncode}): {done.stderr[-2000:]}"
        now = _trials(db)
        assert set(stored) <= set(now) and len(set(now)) == len(now)  # stored trials are kept, never rewritten
        assert set(now) <= set(expected)  # each stored trial is the one the uninterrupted search ran
        stored = now
        TALLY["kill points survived"] += 1
    done = cli_run(cfg, out)
    assert done.returncode == 0, done.stderr
    assert _trials(db) == expected  # same proposals, values and statuses, one row per trial
    with connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 2  # the tuned grid: 2 models x clean
