"""The worker-process executor, and what a sweep stores after its grid: dataset cards,
deployment profiles (one per model label, with a real-time column) and the gallery."""

from __future__ import annotations

import sqlite3

import pytest

from harness.run.cli import main
from harness.run.config import ConfigError, parse_config
from harness.store import ResultStore

SWEEP = """
[run]
name = "post"
seeds = [0, 1]
device = "cpu"  # CPU worker processes, also on a GPU machine
executor = "{executor}"
{workers}

[train]
epochs = 2

[[models]]
name = "text-only"
options = {{ hidden = 8 }}

[[models]]
name = "late-fusion"
options = {{ hidden = 8 }}

[[datasets]]
name = "synthetic"
options = {{ n_train = 4, n_valid = 2, n_test = 2, min_utts = 3, max_utts = 4 }}

[[corruptions]]
name = "audio-white"
severities = [3]

[deployment]
max_utterances = 4
repeats = 1
"""


def _write(tmp_path, name, executor, workers=""):
    path = tmp_path / f"{name}.toml"
    path.write_text(SWEEP.format(executor=executor, workers=workers))
    return path


def _rows(db):
    with sqlite3.connect(db) as con:
        return sorted(con.execute("SELECT cell_key, variant, seed, corruption, severity, status, metrics FROM results"))


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    out = tmp / "run"
    assert main(["run", str(_write(tmp, "local", "local")), "--out", str(out), "--quiet"]) == 0
    return out


def test_processes_executor_gives_the_local_rows(tmp_path, local_run):
    out = tmp_path / "run"
    assert main(["run", str(_write(tmp_path, "proc", "processes", "workers = 2")), "--out", str(out), "--quiet",
                 "--no-report"]) == 0
    local, proc = _rows(local_run / "results.sqlite"), _rows(out / "results.sqlite")
    assert len(local) == 2 * 2 * 2  # models x seeds x (clean + 1 severity)
    assert proc == local


def test_deployment_profiles_and_dataset_cards_are_stored_and_reported(local_run):
    store = ResultStore(local_run / "results.sqlite")
    deploy = store.artifacts("deployment")
    assert sorted(r["variant"] for r in deploy.values()) == ["late-fusion", "text-only"]
    for r in deploy.values():
        assert r["status"] == "ok" and r["seed"] == 0 and r["n_utts_max"] == 4
        assert r["latency_ms_p50"] > 0 and r["params"] > 0 and r["flops_per_utt"] > 0
        assert 0.6 <= r["utterance_duration_s"] <= 1.2 and r["real_time"] == (r["rtf_p95"] < 1)
    cards = store.artifacts("dataset_card")
    assert list(cards) == ["synthetic"] and cards["synthetic"]["splits"]["test"]["dialogues"] == 2
    md = (local_run / "tables" / "deployment_synthetic.md").read_text()
    assert "Real time?" in md and "| text-only |" in md and "| late-fusion |" in md
    assert (local_run / "tables" / "deployment_synthetic.tex").read_text().count(r"\toprule") == 1
    assert "| synthetic | classification | 4 | 2 | 4 / " in (local_run / "tables" / "datasets.md").read_text()
    assert (local_run / "figures" / "gallery_synthetic.png").stat().st_size > 0
    report = (local_run / "report.md").read_text()
    assert "Deployment cost" in report and "gallery_synthetic.png" in report


def test_resume_measures_only_missing_profiles_and_a_failed_one_is_reported(tmp_path, local_run):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(local_run, out)
    store = ResultStore(out / "results.sqlite")
    before = store.artifacts("deployment")
    key = next(k for k, r in before.items() if r["variant"] == "late-fusion")
    with sqlite3.connect(out / "results.sqlite") as con:
        con.execute("DELETE FROM artifacts WHERE kind = 'deployment' AND name = ?", (key,))
    train_key = before[key]["train_key"]
    (out / "checkpoints" / f"{train_key}.pt").write_bytes(b"not a checkpoint")
    assert main(["run", str(_write(tmp_path, "again", "local")), "--out", str(out), "--quiet", "--resume"]) == 0
    after = store.artifacts("deployment")
    text_key = next(k for k, r in before.items() if r["variant"] == "text-only")
    assert after[text_key] == before[text_key]  # stored: not measured again
    assert after[key]["status"] == "failed" and "checkpoint" in after[key]["error"].lower()
    assert "failed:" in (out / "tables" / "deployment_synthetic.md").read_text()


def test_config_sections_are_validated():
    base = {"models": [{"name": "text-only"}], "datasets": [{"name": "synthetic"}]}
    assert parse_config(base).deployment.enabled is True
    assert parse_config({**base, "run": {"executor": "processes", "workers": 3}}).run.workers == 3
    for bad, key in (({"run": {"executor": "threads"}}, "run.executor"), ({"run": {"workers": 0}}, "run.workers"),
                     ({"deployment": {"repeats": 0}}, "deployment.repeats"),
                     ({"deployment": {"every": 1}}, "deployment.every")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            parse_config({**base, **bad})
