"""Bad input is refused before anything is written or trained: exit status 2, one line per
problem with the ``mcer-bench:`` prefix naming the file, key or value, and nothing on disk.

One test per kind of bad input a new user met (issue #18's table).
"""

from __future__ import annotations

import os
import sqlite3

import pytest
from fixtures_datasets import mmsa_dict, write_pickle
from tiny_sweeps import tiny_sweep_toml

from harness.run.cli import main
from harness.store import ResultStore

TINY = tiny_sweep_toml()


def _tree(root) -> dict[str, tuple[int, float]]:
    """Every file under ``root`` with its size and modification time."""
    out = {}
    for folder, _, files in os.walk(root):
        for f in files:
            p = os.path.join(folder, f)
            st = os.stat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out


def _refused(capsys, argv, tmp_path, *expected: str, lines: int = 1) -> str:
    """Run ``argv`` in ``tmp_path``; assert exit 2, ``lines`` prefixed lines on stderr holding every
    ``expected`` text, and no file created or changed under ``tmp_path``."""
    before = _tree(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    got = err.strip().splitlines()
    assert len(got) == lines, err
    assert all(line.startswith("mcer-bench: error: ") for line in got), err
    for text in expected:
        assert text in err, err
    assert _tree(tmp_path) == before, "something was written"
    return err


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _config(workdir, name, text):
    (workdir / name).write_text(text, encoding="utf-8")
    return name


def test_dataset_path_that_does_not_exist(workdir, capsys):
    cfg = _config(workdir, "nopath.toml", TINY.replace(
        'name = "synthetic"\noptions = { n_train = 2, n_valid = 1, n_test = 1, min_utts = 2, max_utts = 3, keep_raw = false }',
        'name = "mmsa"\noptions = { path = "data/MOSI/unaligned_50.pkl" }'))
    _refused(capsys, ["run", cfg, "--out", "out", "--quiet"], workdir,
             "nopath.toml: key 'datasets.0.options.path'", "'data/MOSI/unaligned_50.pkl' does not exist")
    assert not (workdir / "out").exists()


def test_dataset_path_that_cannot_be_read(workdir, capsys):
    if os.geteuid() == 0:
        pytest.skip("root reads any file, so an unreadable dataset file cannot be made")
    (workdir / "locked.pkl").write_bytes(b"x")
    (workdir / "locked.pkl").chmod(0)
    cfg = _config(workdir, "locked.toml", TINY.replace(
        'name = "synthetic"\noptions = { n_train = 2, n_valid = 1, n_test = 1, min_utts = 2, max_utts = 3, keep_raw = false }',
        'name = "mmsa"\noptions = { path = "locked.pkl" }'))
    _refused(capsys, ["run", cfg, "--out", "out", "--quiet"], workdir, "key 'datasets.0.options.path'",
             "'locked.pkl' is not readable")


def _store(path, rows: int = 40) -> bytes:
    store = ResultStore(path)
    for i in range(rows):
        store.add_run(f"run-{i}", {"filler": "x" * 2000}, "hash", {}, "2026-01-01")
    return path.read_bytes()


def test_report_on_a_truncated_store(workdir, capsys):
    run = workdir / "run"
    run.mkdir()
    data = _store(run / "results.sqlite")
    (run / "results.sqlite").write_bytes(data[: len(data) // 2])
    _refused(capsys, ["report", "run"], workdir, "result store run/results.sqlite is truncated")


def test_report_on_a_store_with_corrupt_pages(workdir, capsys):
    run = workdir / "run"
    run.mkdir()
    data = bytearray(_store(run / "results.sqlite"))
    data[4096 * 3: 4096 * 5] = os.urandom(8192)  # pages in the middle, header intact
    (run / "results.sqlite").write_bytes(bytes(data))
    _refused(capsys, ["report", "run"], workdir, "result store run/results.sqlite is corrupt")


def test_report_on_random_bytes(workdir, capsys):
    run = workdir / "run"
    run.mkdir()
    (run / "results.sqlite").write_bytes(os.urandom(8192))
    _refused(capsys, ["report", "run"], workdir, "result store run/results.sqlite is not an SQLite database")


@pytest.mark.parametrize("extra", [[], ["--dry-run"]], ids=["run", "dry-run"])
def test_run_into_a_directory_whose_store_is_random_bytes(workdir, capsys, extra):
    cfg = _config(workdir, "tiny.toml", TINY)
    (workdir / "out").mkdir()
    (workdir / "out" / "results.sqlite").write_bytes(os.urandom(8192))
    _refused(capsys, ["run", cfg, "--out", "out", "--quiet", *extra], workdir,
             "result store out/results.sqlite is not an SQLite database")
    assert sorted(os.listdir(workdir / "out")) == ["results.sqlite"]


def test_report_on_an_empty_store_leaves_it_empty(workdir, capsys):
    run = workdir / "run"
    run.mkdir()
    (run / "results.sqlite").touch()
    _refused(capsys, ["report", "run"], workdir, "result store run/results.sqlite is an empty (0-byte) file")
    assert (run / "results.sqlite").stat().st_size == 0


def test_report_never_writes_to_a_good_store(tmp_path, capsys):
    """A report of a finished run opens the store read-only: its bytes do not change."""
    out = tmp_path / "run"
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--no-report"]) == 0
    db = out / "results.sqlite"
    before = db.read_bytes()
    os.chmod(db, 0o444)  # a write would fail as well (for a non-root user)
    try:
        assert main(["report", str(out)]) == 0
    finally:
        os.chmod(db, 0o644)
    capsys.readouterr()
    assert db.read_bytes() == before
    assert not [p for p in os.listdir(out) if p.startswith("results.sqlite-")]  # no journal left


def test_corruption_modality_that_is_not_a_modality(workdir, capsys):
    cfg = _config(workdir, "audoi.toml", TINY.replace('modality = "audio"', 'modality = "audoi"'))
    _refused(capsys, ["run", cfg, "--out", "out", "--quiet"], workdir,
             "audoi.toml: key 'corruptions.0.options.modality'", "'audoi'", "'text', 'audio', 'video'",
             "did you mean 'audio'?")


def test_corruption_option_refused_by_its_constructor(workdir, capsys):
    cfg = _config(workdir, "sched.toml", TINY.replace('modality = "audio"', 'modality = "audio", schedule = "burst"'))
    _refused(capsys, ["run", cfg, "--out", "out", "--quiet"], workdir,
             "key 'corruptions.0.options.schedule'", "'burst'", "did you mean 'bursts'?")


def test_raw_audio_corruption_on_a_feature_pickle(workdir, capsys):
    (workdir / "MOSI" / "Processed").mkdir(parents=True)
    write_pickle(workdir / "MOSI" / "Processed" / "unaligned_50.pkl", mmsa_dict("unaligned"), protocol=5)
    cfg = _config(workdir, "raw.toml", TINY.replace(
        'name = "synthetic"\noptions = { n_train = 2, n_valid = 1, n_test = 1, min_utts = 2, max_utts = 3, keep_raw = false }',
        'name = "mmsa"\noptions = { path = "MOSI/Processed/unaligned_50.pkl" }').replace(
        'name = "feature-gaussian"', 'name = "audio-white"'))
    _refused(capsys, ["run", cfg, "--out", "out", "--quiet"], workdir,
             "raw.toml: key 'corruptions.0': corruption 'audio-white' corrupts raw waveforms",
             "dataset 'mmsa' (MOSI/Processed/unaligned_50.pkl) holds features only")


def test_raw_corruption_on_a_dataset_loaded_without_raw_media(workdir, capsys):
    cfg = _config(workdir, "nokeep.toml", TINY.replace('name = "feature-gaussian"', 'name = "video-jpeg"').replace(
        'options = { modality = "audio" }', ""))
    _refused(capsys, ["run", cfg, "--out", "out", "--quiet"], workdir,
             "corruption 'video-jpeg' corrupts raw video frames", "'synthetic' is loaded without its raw media",
             "keep_raw = true")


def test_misspelt_key_gets_the_closest_key_and_the_valid_ones(workdir, capsys):
    cfg = _config(workdir, "epoch.toml", TINY.replace("epochs = 1", "epoch = 1"))
    err = _refused(capsys, ["run", cfg, "--out", "out", "--quiet"], workdir,
                   "epoch.toml: key 'train.epoch': unknown key; did you mean 'train.epochs'?")
    assert "Valid keys in [train]: " in err and "batch_size" in err and "patience" in err


def test_misspelt_key_in_a_list_of_tables(workdir, capsys):
    cfg = _config(workdir, "opt.toml", TINY.replace("options = { hidden = 8 }", "optons = { hidden = 8 }"))
    _refused(capsys, ["run", cfg, "--out", "out", "--quiet"], workdir,
             "key 'models.0.optons': unknown key; did you mean 'models.0.options'?", "Valid keys in [[models]]: ")


def test_binary_file_as_config(workdir, capsys):
    (workdir / "model.bin").write_bytes(bytes(range(256)) * 4)
    _refused(capsys, ["run", "model.bin", "--out", "out", "--quiet"], workdir,
             "model.bin: not UTF-8 text (byte 0x80 at offset 128)")


def test_empty_config_every_line_has_the_prefix(workdir, capsys):
    cfg = _config(workdir, "empty.toml", "")
    err = _refused(capsys, ["run", cfg, "--out", "out", "--quiet"], workdir, lines=2)
    assert "empty.toml: key 'models': required, but the config has none (add a [[models]] table)" in err
    assert "empty.toml: key 'datasets': required" in err


def test_severity_out_of_range_says_got_once(workdir, capsys):
    cfg = _config(workdir, "sev.toml", TINY.replace("severities = [1]", "severities = [9]"))
    err = _refused(capsys, ["run", cfg, "--out", "out", "--quiet"], workdir,
                   "sev.toml: key 'corruptions.0.severities': severities must be integers in 0..5")
    assert err.count("got") == 1


def test_model_option_value_outside_the_allowed_ones(workdir, capsys):
    cfg = _config(workdir, "mcer.toml", TINY.replace('name = "text-only"\noptions = { hidden = 8 }',
                                                     'name = "mcer"\noptions = { denoiser = "diff_shift" }'))
    _refused(capsys, ["run", cfg, "--out", "out", "--quiet"], workdir,
             "key 'models.0.options.denoiser': model 'mcer' does not allow 'diff_shift'", "did you mean 'diff-shift'?")


def test_store_check_reads_without_writing(tmp_path):
    """check_store opens read-only: a store whose tables are missing is refused and untouched."""
    from harness.store import StoreError, check_store

    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE notes (x)")
    before = db.read_bytes()
    with pytest.raises(StoreError, match="not an mcer-bench result store: it lacks the table"):
        check_store(db)
    assert db.read_bytes() == before


def test_read_only_stores_block_turns_every_store_read_only(tmp_path):
    from harness.store import read_only_stores

    db = tmp_path / "results.sqlite"
    _store(db, rows=1)
    with read_only_stores():
        store = ResultStore(db)  # the caller asks for a writable store...
        assert store.read_only
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.add_run("x", {}, "h", {}, "now")  # ...and cannot write
    assert not ResultStore(db).read_only
