"""End-to-end: the CLI runs a tiny sweep, resumes without redoing work, and refuses bad input."""

import json
import os
import sqlite3
import sys

import pytest

from harness.run.cli import main

TINY = """
[run]
name = "tiny"
seeds = [0, 1]
device = "cpu"  # the assertions below are about a CPU run, also on a GPU machine

[train]
epochs = 2

[[models]]
name = "text-only"
options = { hidden = 8 }

[[models]]
name = "early-fusion"
options = { hidden = 8, align_len = 4 }

[[datasets]]
name = "synthetic"
options = { n_train = 4, n_valid = 2, n_test = 2, min_utts = 3, max_utts = 4, keep_raw = false }

[[corruptions]]
name = "feature-gaussian"
severities = [0, 2, 5]
options = { modality = "audio" }
"""


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _rows(db):
    with sqlite3.connect(db) as con:
        return con.execute("SELECT cell_key, variant, seed, corruption, severity, status FROM results").fetchall()


def test_run_resume_and_report(tmp_path, tiny_config, capsys):
    out = tmp_path / "run"
    assert main(["run", str(tiny_config), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "plan: 4 trainings" in printed and "12 evaluation cells" in printed
    rows = _rows(out / "results.sqlite")
    assert len(rows) == 12  # 2 models x 2 seeds x (clean + 2 severities)
    assert {r[5] for r in rows} == {"ok"}
    for f in ("figures/robustness_synthetic.png", "figures/robustness_synthetic.pdf", "tables/robustness_synthetic.md",
              "report.md", "results.csv", "config.toml", "index.html", "tables/main_synthetic.tex",
              "tables/severities.md", "figures/drop_heatmap_synthetic.png", "results.json"):
        assert (out / f).stat().st_size > 0, f
    assert len(list((out / "checkpoints").glob("*.pt"))) == 4
    # second run: everything stored, nothing retrained
    assert main(["run", str(tiny_config), "--out", str(out), "--quiet", "--resume"]) == 0
    assert "to run: 0 trainings, 0 evaluations (12 already stored)" in capsys.readouterr().out
    assert sorted(_rows(out / "results.sqlite")) == sorted(rows)
    # rows carry provenance
    with sqlite3.connect(out / "results.sqlite") as con:
        cfg_hash, code, pkgs, device, wall = con.execute(
            "SELECT config_hash, code_version, package_versions, device, wall_time_s FROM results LIMIT 1").fetchone()
    assert len(cfg_hash) == 16 and code and "torch" in json.loads(pkgs) and device.startswith("cpu") and wall >= 0
    # report rebuilds from the store alone
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").exists()


def test_dry_run_prints_plan_only(tmp_path, tiny_config, capsys):
    out = tmp_path / "dry"
    assert main(["run", str(tiny_config), "--out", str(out), "--dry-run"]) == 0
    assert "4 trainings" in capsys.readouterr().out
    assert not out.exists()


@pytest.mark.parametrize("edit,expect", [
    (("name = \"text-only\"", "name = \"text-onli\""), "unknown model 'text-onli'"),
    (("seeds = [0, 1]", "seeds = [0, 1]\nflavour = 3"), "key 'run.flavour'"),
    (("severities = [0, 2, 5]", "severities = [0, 2, 9]"), "severities must be integers in 0..5"),
])
def test_bad_input_exits_2_with_clear_message_and_writes_nothing(tmp_path, edit, expect, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace(*edit))
    out = tmp_path / "bad-run"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    assert expect in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_directory_non_root(tmp_path, tiny_config, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert main(["run", str(tiny_config), "--out", str(locked / "run"), "--quiet"]) == 2
    assert "not writable" in capsys.readouterr().err


def test_output_directory_that_is_a_file_is_refused(tmp_path, tiny_config, capsys):
    # works as root too: a path below a regular file can never be created
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", str(tiny_config), "--out", str(blocker / "run"), "--quiet"]) == 2
    assert "is not writable" in capsys.readouterr().err


def test_second_process_on_same_run_dir_is_refused(tmp_path, tiny_config, capsys):
    from harness.run.driver import run_lock

    out = tmp_path / "busy"
    out.mkdir()
    with run_lock(out):
        # a lock held by this process through another descriptor blocks a second locker
        assert main(["run", str(tiny_config), "--out", str(out), "--quiet"]) == 2
    assert "is in use by process" in capsys.readouterr().err


def test_unknown_model_in_describe_and_list_json(capsys):
    assert main(["describe", "mcer-nope"]) == 2
    assert "unknown model 'mcer-nope'" in capsys.readouterr().err
    assert main(["list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"models", "datasets", "corruptions", "defenses", "extractors"} <= set(data)
    assert "synthetic" in {e["name"] for e in data["datasets"]}


def test_describe_reports_params_and_flops(capsys):
    assert main(["describe", "text-only", "--dims", "text=16,audio=8,video=4", "--classes", "3", "--flops",
                 "--json"]) == 0
    model = json.loads(capsys.readouterr().out)["model"]
    assert model["params"] > 0 and model["flops_per_utterance"] > 0
    assert model["spec"]["dims"] == {"text": 16, "audio": 8, "video": 4}


def test_noise_augmented_training_condition(tmp_path, capsys):
    from harness.run.config import parse_config
    from harness.run.plan import make_plan
    from harness.run.worker import DatasetCache

    data = {
        "run": {"seeds": [0]},
        "train": {"epochs": 1},
        "models": [{"name": "text-only", "options": {"hidden": 8}}],
        "datasets": [{"name": "synthetic", "options": {"n_train": 4, "n_valid": 2, "n_test": 2, "min_utts": 3,
                                                       "max_utts": 4, "keep_raw": False}}],
        "train_conditions": [{"name": "noisy-audio", "copies": 2,
                              "mix": [{"name": "feature-gaussian", "severities": [3, 5], "options": {"modality": "audio"}}]}],
    }
    cfg = parse_config(data)
    plan = make_plan(cfg)
    assert [t.label for t in plan.trainings] == ["text-only", "text-only+noisy-audio"]
    assert plan.trainings[0].key != plan.trainings[1].key
    cache = DatasetCache()
    clean = cache.training_dataset(plan.trainings[0])
    noisy = cache.training_dataset(plan.trainings[1])
    assert len(noisy.splits["train"]) == 3 * len(clean.splits["train"])
    assert noisy.splits["valid"] is clean.splits["valid"] and noisy.splits["test"] is clean.splits["test"]
    first = clean.splits["train"][0].utterances[0]
    copy = next(d for d in noisy.splits["train"] if d.dialogue_id.endswith("~aug0")).utterances[0]
    assert copy.uid == first.uid + "~aug0"
    assert not (copy.features["audio"] == first.features["audio"]).all()
    assert (copy.features["text"] == first.features["text"]).all()
    with pytest.raises(Exception, match="'clean' is the built-in condition"):
        parse_config({**data, "train_conditions": [{**data["train_conditions"][0], "name": "clean"}]})


def test_corruptions_gallery_command(tmp_path, capsys):
    assert main(["corruptions", "gallery", "audio-white", "video-occlusion", "--out", str(tmp_path)]) == 0
    png = tmp_path / "corruption_gallery.png"
    assert png.stat().st_size > 10_000 and (tmp_path / "corruption_gallery.pdf").stat().st_size > 0
    assert main(["corruptions", "gallery", "audio-whit", "--out", str(tmp_path)]) == 2
    assert "Did you mean: audio-white" in capsys.readouterr().err


def test_seeds_override_is_what_the_stored_config_says(tmp_path, tiny_config):
    from harness.store import ResultStore

    out = tmp_path / "run"
    assert main(["run", str(tiny_config), "--out", str(out), "--quiet", "--no-report", "--seeds", "1"]) == 0
    store = ResultStore(out / "results.sqlite")
    assert store.runs()[-1]["config"]["run"]["seeds"] == [1]
    assert set(store.dataframe()["seed"]) == {1}
    assert not (out / "report.md").exists()
