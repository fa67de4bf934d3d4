"""The extraction cache through a real sweep: each corrupted test set is extracted once across
worker processes, a resumed run extracts nothing, and each row stores its extractors' counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fixtures_datasets import raw_iemocap_folder, write_mp4

from harness import EXTRACTORS
from harness.extractors.base import config_digest
from harness.extractors.cache import CLEAN, ExtractionCache
from harness.extractors.random_models import save_audio_encoder, save_vision_encoder
from harness.run.config import parse_config
from harness.run.driver import run_sweep
from harness.store import ResultStore

CORRUPTIONS = ("audio-white", "audio-pink")
SEVERITIES = (2, 5)


@pytest.fixture(scope="module")
def iemocap(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("iemocap")
    raw_iemocap_folder(root)
    return root


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> str:
    return str(save_audio_encoder(tmp_path_factory.mktemp("enc") / "w2v", "wav2vec2"))


def sweep(iemocap: Path, encoder: str, **extra) -> dict:
    return {
        "run": {"name": "share", "seeds": [0, 1], "executor": "processes", "workers": 2},
        "train": {"epochs": 1, "dialogue_batch_size": 2},
        "models": [{"name": "early-fusion", "options": {"hidden": 8}}, {"name": "late-fusion", "options": {"hidden": 8}}],
        "datasets": [{"name": "raw-iemocap", "options": {
            "path": str(iemocap), "keep_raw": True, "text": "hash-embed", "audio": "audio-encoder",
            "audio_options": {"path": encoder, "pooling": "frames", "device": "cpu"}}}],
        "corruptions": [{"name": c, "severities": list(SEVERITIES)} for c in CORRUPTIONS],
        "deployment": {"enabled": False},
        **extra,
    }


def audio_counts(cache_dir: Path, encoder: str) -> dict:
    digest = config_digest(EXTRACTORS.create("audio-encoder", path=encoder, pooling="frames", device="cpu").config())
    return ExtractionCache(cache_dir).extraction_counts(digest)


def test_a_sweep_extracts_each_corrupted_test_set_once_across_worker_processes_and_a_resume_none(
        iemocap, encoder, tmp_path):
    """2 models x 2 seeds x 2 corruptions x 2 severities on 2 worker processes: 4 corrupted
    extractions of the test set and 1 clean extraction of the data, counted by the cache's
    cross-process counter; a killed run resumed (its corrupted cells lost) extracts nothing."""
    out = tmp_path / "run"
    cfg = sweep(iemocap, encoder)
    summary = run_sweep(parse_config(cfg), out, raw_config=cfg, progress=False, log=lambda *_: None)
    assert (summary.trainings_run, summary.cells_written, summary.failed) == (4, 20, 0)
    store = ResultStore(out / "results.sqlite")
    rows = store.dataframe()
    n_test = int(rows["n_utterances"].iloc[0])
    n_all = sum(len(list((iemocap / f"Session{s}" / "sentences" / "wav").rglob("*.wav"))) for s in (1, 5))
    counts = audio_counts(out / "feature_cache", encoder)
    assert counts[(CLEAN, 0, 0)] <= n_all and sum(counts.values()) - counts[(CLEAN, 0, 0)] == 4 * n_test
    corrupted = {k: v for k, v in counts.items() if k[0] != CLEAN}
    assert len(corrupted) == 4 and set(corrupted.values()) == {n_test}  # each (corruption, severity) once
    assert sorted(k[1] for k in corrupted) == [2, 2, 5, 5]

    # a killed run: the corrupted cells of every model were lost before they were stored
    with sqlite3.connect(out / "results.sqlite") as con:
        con.execute("DELETE FROM predictions WHERE cell_key IN (SELECT cell_key FROM results WHERE corruption != 'clean')")
        lost = con.execute("DELETE FROM results WHERE corruption != 'clean'").rowcount
    assert lost == 16
    again = run_sweep(parse_config(cfg), out, raw_config=cfg, progress=False, log=lambda *_: None, resume=True)
    assert (again.trainings_run, again.cells_written, again.failed) == (4, 16, 0)
    assert audio_counts(out / "feature_cache", encoder) == counts  # 0 extractions: every feature came from the cache
    metrics = ResultStore(out / "results.sqlite").dataframe().set_index("cell_key")["metric_wf1"]
    assert metrics.sort_index().equals(rows.set_index("cell_key")["metric_wf1"].sort_index())


def test_the_cache_options_are_the_sweeps_and_a_shared_folder_serves_another_run(iemocap, encoder, tmp_path):
    shared = tmp_path / "shared-cache"
    cfg = sweep(iemocap, encoder, feature_cache={"dir": str(shared), "dtype": "float16", "max_gb": 1})
    cfg["run"].update(seeds=[0], executor="local")
    cfg["models"] = cfg["models"][:1]
    cfg["corruptions"] = cfg["corruptions"][:1]
    run_sweep(parse_config(cfg), tmp_path / "a", raw_config=cfg, progress=False, log=lambda *_: None)
    assert not (tmp_path / "a" / "feature_cache").exists() and (shared / "index.sqlite").is_file()
    report = ExtractionCache(shared, dtype="float16").size_report()
    assert report["entries"] > 0 and {g["dtype"] for g in report["by_extractor"]} == {"float16"}
    first = audio_counts(shared, encoder)
    run_sweep(parse_config(cfg), tmp_path / "b", raw_config=cfg, progress=False, log=lambda *_: None)
    assert audio_counts(shared, encoder) == first  # the second run trained and evaluated, extracting nothing


def test_each_cell_stores_the_frames_without_a_face_of_its_test_set(tmp_path):
    """With a vision encoder over face crops, each row stores its test set's counts: an
    occlusion changes them, the clean cell has the clean ones."""
    from harness.datasets.validate import RepairLog  # noqa: F401 - the loader's own import, kept warm

    root = tmp_path / "mmsa"
    rows = []
    modes = ["train", "train", "train", "train", "valid", "test", "test"]
    for k, mode in enumerate(modes):
        vid, clip = f"video_{k // 2:04d}", f"{k % 2 + 1:04d}"
        rows.append(f'{vid},{clip},"words {k}",{[-0.8, 0.4, 1.0, -0.2, 0.6, -1.0, 0.5][k] * 3},x,{mode},,,')
        write_mp4(root / "Raw" / vid / f"{clip}.mp4", seconds=0.6, freq=200 + 100 * k, shade=40 * k, size=64)
    (root / "label.csv").write_text("video_id,clip_id,text,label,annotation,mode,label_T,label_A,label_V\n"
                                    + "\n".join(rows) + "\n")
    vit = str(save_vision_encoder(tmp_path / "vit", "vit"))
    cfg = {"run": {"name": "faces", "seeds": [0]}, "train": {"epochs": 1},
           "models": [{"name": "early-fusion", "options": {"hidden": 8}}],
           "datasets": [{"name": "raw-mmsa", "options": {
               "path": str(root), "keep_raw": True, "audio": None, "frame_size": 64, "video": "vision-encoder",
               "video_options": {"path": vit, "crop": "face", "no_face": "zeros", "device": "cpu"}}}],
           "corruptions": [{"name": "video-occlusion", "severities": [5]}], "deployment": {"enabled": False}}
    run_sweep(parse_config(cfg), tmp_path / "run", raw_config=cfg, progress=False, log=lambda *_: None)
    rows = ResultStore(tmp_path / "run" / "results.sqlite").dataframe().set_index("corruption")
    import json

    clean, occluded = (json.loads(rows.loc[c, "extraction_stats"])["video"] for c in (CLEAN, "video-occlusion"))
    assert clean["frames"] == occluded["frames"] > 0
    assert 0 <= clean["frames_without_face"] <= clean["frames"]  # tone clips hold no face: every frame counts
    assert clean["frames_without_face"] == clean["frames"] and clean["clips_without_face"] == 2


def _utterances(dialogues):
    return [u for d in dialogues for u in d.utterances]


def test_a_cached_corruption_equals_the_uncached_one_and_a_full_cache_corrupts_nothing(tmp_path, monkeypatch):
    import numpy as np
    import torch

    from harness import CORRUPTIONS, DATASETS

    data = DATASETS.create("synthetic", n_train=2, n_valid=1, n_test=2, min_utts=2, max_utts=3, seed=3)
    test = data.splits["test"]
    corruption = CORRUPTIONS.create("audio-babble").bind(data)  # draws on the other utterances of the set
    cache = ExtractionCache(tmp_path)
    plain, cached = corruption(test, 3, 7), corruption.cached(test, 3, 7, cache)
    for a, b in zip(_utterances(plain), _utterances(cached)):
        assert torch.equal(a.features["audio"], b.features["audio"]) and np.array_equal(a.raw.waveform, b.raw.waveform)
    assert sum(cache.extraction_counts().values()) == len(_utterances(test))

    monkeypatch.setattr(type(corruption), "corrupt_raw", lambda *a, **k: pytest.fail("corrupted again"))
    again = corruption.cached(test, 3, 7, cache, keep_raw=False)
    for a, b in zip(_utterances(plain), _utterances(again)):
        assert torch.equal(a.features["audio"], b.features["audio"])
    monkeypatch.undo()
    counts = cache.extraction_counts()
    corruption.cached(test[:1], 3, 7, cache)  # another set: babble draws on other utterances, so new entries
    assert sum(cache.extraction_counts().values()) == sum(counts.values()) + len(test[0].utterances)


def test_an_extractor_is_rebuilt_from_its_recorded_config_and_refused_when_its_files_changed(tmp_path):
    from harness.extractors.base import extractor_from_config

    folder = save_audio_encoder(tmp_path / "w2v", "wav2vec2")
    config = EXTRACTORS.create("audio-encoder", path=str(folder), device="cpu").config()
    assert "model_sha256" in config and extractor_from_config(config).config() == config
    save_audio_encoder(folder, "wav2vec2", seed=1)  # other weights in the same folder
    with pytest.raises(ValueError, match="model_sha256 is now"):
        extractor_from_config(config)
    smile = EXTRACTORS.create("opensmile", feature_set="eGeMAPSv02").config()
    assert extractor_from_config(smile).config() == smile  # its library version is a recorded fact
