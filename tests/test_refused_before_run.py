"""Issue #24's inputs: each is refused by ``--dry-run`` in one line with exit status 2 and nothing
written, where it used to pass validation and fail cell by cell; and a sweep whose every cell
fails at run time ends with its failures grouped by error and exit status 1, with no traceback
and no follow-on error."""

from __future__ import annotations

import os

import pytest
import tomli_w
from fixtures_datasets import erc_tuple, write_pickle

from harness.run.cli import main


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


SMALL = {"n_train": 2, "n_valid": 1, "n_test": 1, "min_utts": 2, "max_utts": 3, "keep_raw": False}


def _sweep(workdir, model: dict, dataset: dict, **sections) -> str:
    """``sweep.toml`` with one model entry, one dataset entry and any other sections."""
    (workdir / "sweep.toml").write_text(tomli_w.dumps({"train": {"epochs": 1}, "models": [model],
                                                       "datasets": [dataset], **sections}))
    return "sweep.toml"


def _refused(capsys, workdir, *expected: str) -> str:
    """``--dry-run`` of ``sweep.toml``: exit 2, one line holding every ``expected`` text, nothing written."""
    before = _files(workdir)
    assert main(["run", "sweep.toml", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("mcer-bench: error: sweep.toml: key "), err
    for text in expected:
        assert text in err, err
    assert _files(workdir) == before and not (workdir / "runs").exists()
    return err


def _synthetic(**options) -> dict:
    return {"name": "synthetic", "options": {**SMALL, **options}}


def test_dataset_whose_widths_differ_from_the_model_preset(workdir, capsys):
    """An erc-pickle with 100-d video against bc-lstm preset iemocap (512-d video)."""
    write_pickle(workdir / "iemocap.pkl", erc_tuple("dialoguernn-iemocap-9", n_train=6,
                                                    dims={"text": 100, "audio": 100, "video": 100}))
    _sweep(workdir, {"name": "bc-lstm", "preset": "iemocap"}, {"name": "erc-pickle", "options": {"path": "iemocap.pkl"}})
    _refused(capsys, workdir, "key 'models.0.preset'", "dataset 'erc-pickle' (iemocap.pkl)", "'video': 512",
             "the data has {'text': 100, 'audio': 100, 'video': 100}")


def test_dataset_file_of_the_wrong_layout(workdir, capsys):
    """A dict where an ERC tuple is expected: the loader's own DataError, before anything runs."""
    write_pickle(workdir / "dict.pkl", {"a": 1, "b": [1, 2]})
    _sweep(workdir, {"name": "bc-lstm"}, {"name": "erc-pickle", "options": {"path": "dict.pkl"}})
    _refused(capsys, workdir, "key 'datasets.0.options.path'", "dict.pkl: an ERC pickle is a tuple of dicts, got dict")


def test_option_value_out_of_range(workdir, capsys):
    _sweep(workdir, {"name": "late-fusion", "options": {"dropout": 1.5}}, _synthetic())
    _refused(capsys, workdir, "key 'models.0.options.dropout'", "late-fusion", "1.5", "must lie in [0, 1)")


def test_preset_named_inside_options_points_to_the_entry_key(workdir, capsys):
    _sweep(workdir, {"name": "bc-lstm", "options": {"preset": "iemocap"}},
           _synthetic(dims={"text": 100, "audio": 100, "video": 512}))
    _refused(capsys, workdir, "key 'models.0.options.preset'", "write preset = 'iemocap' beside name = 'bc-lstm'",
             "architecture and the training recipe")


def test_corruption_of_a_modality_the_dataset_lacks(workdir, capsys):
    _sweep(workdir, {"name": "text-only"}, _synthetic(dims={"text": 16, "audio": 8}),
           corruptions=[{"name": "feature-missing", "options": {"modality": "video"}}])
    _refused(capsys, workdir, "key 'corruptions.0.options.modality'", "acts on 'video'",
             "has no video (its modalities: audio, text)")


def test_extractor_option_of_a_raw_corruption(workdir, capsys):
    _sweep(workdir, {"name": "text-only"}, _synthetic(keep_raw=True),
           corruptions=[{"name": "audio-white", "options": {"extractor": {"name": "logmel", "n_mels": 0}}}])
    _refused(capsys, workdir, "key 'corruptions.0.options.extractor.n_mels'", "extractor 'logmel' does not allow 0",
             "[1, inf)")


def test_model_that_cannot_run_on_the_data(workdir, capsys):
    """MulT fuses two modalities or more: built on the data's spec (meta device) before the run."""
    _sweep(workdir, {"name": "mult"}, _synthetic(dims={"text": 16}))
    _refused(capsys, workdir, "key 'models.0'", "model 'mult' on dataset 'synthetic'", "at least two modalities")


RAISING = '''
from harness import CORRUPTIONS
from harness.corruption import Corruption, SeverityTable


@CORRUPTIONS.register("test-raises")
class Raises(Corruption):
    """Fails on every utterance it is asked to corrupt."""

    table = SeverityTable("nothing", "", (0.0, 1.0, 2.0, 3.0, 4.0, 5.0))

    def corrupt_utterance(self, utt, severity, rng, position=0.0):
        raise RuntimeError("this corruption fails on purpose")
'''


def test_sweep_whose_every_cell_fails_ends_with_the_grouped_reasons_and_exit_1(workdir, capsys):
    """Every training augments its data with a corruption that raises, so every cell fails."""
    (workdir / "plugins").mkdir()
    (workdir / "plugins" / "raising_corruption.py").write_text(RAISING)
    _sweep(workdir, {"name": "text-only", "options": {"hidden": 8}}, _synthetic(),
           include_clean_training=False, run={"name": "allfail", "seeds": [0, 1]},
           corruptions=[{"name": "feature-gaussian", "severities": [1]}],
           train_conditions=[{"name": "noisy", "mix": [{"name": "test-raises", "severities": [1],
                                                       "options": {"modality": "audio"}}]}])
    assert main(["--include-path", "plugins", "run", "sweep.toml", "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "4 of 4 cells failed, with one error:" in out
    assert ("  4 cells: RuntimeError: this corruption fails on purpose (first: model text-only+noisy, dataset "
            "synthetic, seed 0)") in out
    assert "deployment: skipped text-only+noisy on synthetic: its training failed (RuntimeError: " in out
    assert "every cell of the sweep failed, so no report was written" in err
    for internal in ("Traceback", "task_of", "CheckpointError", "warning:"):
        assert internal not in out + err
    assert not (workdir / "runs" / "allfail" / "report.md").exists()
