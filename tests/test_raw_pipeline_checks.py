"""Raw-media pipelines checked before anything is written, and the IEMOCAP reference preset on
raw IEMOCAP media.

Each bad input is refused by ``mcer-bench run --dry-run`` (and by a real run) in one line with
exit status 2 and nothing written: an encoder folder without weights, a folder whose model is
not an audio encoder, an openSMILE feature set openSMILE does not know, and an extractor whose
width does not match a model preset. ``mcer-reference`` at its ``iemocap`` preset then trains
on a raw-IEMOCAP-layout folder whose audio is openSMILE's IS10 set (1582-d, no projection),
with text and video projected to the preset's widths.
"""

from __future__ import annotations

import os
import shutil

import pytest
import tomli_w
from fixtures_datasets import raw_iemocap_folder, write_mp4

from harness.extractors.random_models import save_audio_encoder, save_vision_encoder
from harness.run.cli import main
from harness.store import ResultStore


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw_iemocap_folder(tmp_path / "IEMOCAP")
    for ev in (tmp_path / "IEMOCAP").rglob("EmoEvaluation/*.txt"):  # the dialog videos the utterances are cut from
        write_mp4(ev.parents[1] / "avi" / "DivX" / f"{ev.stem}.avi", seconds=4.0, size=16, audio=False)
    return tmp_path


def _files(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def _sweep(workdir, audio: str, audio_options: dict, model: dict | None = None, **dataset) -> str:
    options = {"path": "IEMOCAP", "keep_raw": True, "audio": audio, "audio_options": audio_options, **dataset}
    (workdir / "sweep.toml").write_text(tomli_w.dumps({
        "run": {"name": "raw"}, "train": {"epochs": 1},
        "models": [model or {"name": "late-fusion", "options": {"hidden": 8}}],
        "datasets": [{"name": "raw-iemocap", "options": options}],
        "corruptions": [{"name": "audio-white", "severities": [5]}]}))
    return "sweep.toml"


def _refused(capsys, workdir, *expected: str) -> str:
    """``--dry-run`` and a real run of ``sweep.toml``: exit 2, one line holding every ``expected``
    text, nothing written."""
    capsys.readouterr()  # what building the fixtures printed
    before = _files(workdir)
    for extra in (["--dry-run"], []):
        assert main(["run", "sweep.toml", "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("mcer-bench: error: sweep.toml: key 'datasets.0") or "models.0" in err, err
        for text in expected:
            assert text in err, err
        assert _files(workdir) == before and not (workdir / "runs").exists()
    return err


def test_an_encoder_folder_without_weights(workdir, capsys):
    folder = save_audio_encoder(workdir / "w2v", "wav2vec2")
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    _sweep(workdir, "audio-encoder", {"path": "w2v"})
    _refused(capsys, workdir, "dataset 'raw-iemocap' cannot be read", "w2v", "weights")


def test_a_folder_whose_model_is_not_an_audio_encoder(workdir, capsys):
    save_vision_encoder(workdir / "vit", "vit")
    _sweep(workdir, "audio-encoder", {"path": "vit"})
    _refused(capsys, workdir, "vit", "not an audio")


def test_a_feature_set_opensmile_does_not_know(workdir, capsys):
    _sweep(workdir, "opensmile", {"feature_set": "IS11_speaker_state"})
    _refused(capsys, workdir, "key 'datasets.0.options.audio_options.feature_set'", "IS11_speaker_state",
             "'IS10_paraling'")


def test_an_extractor_width_that_does_not_match_the_model_preset(workdir, capsys):
    """The ``iemocap`` preset expects IS10's 1582-d audio; eGeMAPS gives 88."""
    _sweep(workdir, "opensmile", {"feature_set": "eGeMAPSv02"}, {"name": "mcer-reference", "preset": "iemocap"},
           **REFERENCE_TEXT_VIDEO)
    _refused(capsys, workdir, "key 'models.0.preset'", "'audio': 1582", "'audio': 88")


REFERENCE_TEXT_VIDEO = {
    "text": "projected", "text_options": {"base": {"name": "hash-embed"}, "dim": 1024},
    "video": "projected", "video_options": {"base": {"name": "frame-stats"}, "dim": 342},
}


def test_mcer_reference_iemocap_preset_trains_on_raw_iemocap_with_is10_audio_unprojected(workdir, capsys):
    _sweep(workdir, "opensmile", {"feature_set": "IS10_paraling"}, {"name": "mcer-reference", "preset": "iemocap",
                                                                    "train": {"epochs": 1}}, **REFERENCE_TEXT_VIDEO)
    assert main(["run", "sweep.toml", "--quiet", "--no-report", "--out", "run"]) == 0, capsys.readouterr().err
    store = ResultStore(workdir / "run" / "results.sqlite")
    rows = store.dataframe()
    assert set(rows["status"]) == {"ok"} and len(rows) == 2  # clean and white noise at severity 5
    training = store.dataframe("trainings").iloc[0]
    assert training["status"] == "ok" and training["params"] == 45_632_150  # the released IEMOCAP configuration
    card = store.artifacts("dataset_card")["raw-iemocap"]
    extractors = card["card"]["extractors"]
    assert extractors["audio"]["name"] == "opensmile" and extractors["audio"]["feature_set"] == "IS10_paraling"
    assert card["spec"]["dims"] == {"text": 1024, "audio": 1582, "video": 342}
    shutil.rmtree(workdir / "run")
