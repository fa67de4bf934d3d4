"""Raw-media loaders (MMSA label.csv + mp4, IEMOCAP release, MELD CSVs + clips) and the feature cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures_datasets import raw_iemocap_folder, raw_meld_folder, raw_mmsa_folder, write_mp4

from harness import DATASETS, MODELS
from harness.datasets.detect import dataset_card, detect_format, load_path
from harness.datasets.media import decode_audio, decode_frames
from harness.errors import DataError
from harness.train import TrainConfig, evaluate, fit


def test_pyav_decoding_of_written_clip(tmp_path):
    p = write_mp4(tmp_path / "c.mp4", seconds=0.8, freq=440.0)
    wave = decode_audio(p)
    assert wave.dtype == np.float32 and 0.7 * 16000 < len(wave) < 0.95 * 16000
    spec = np.abs(np.fft.rfft(wave[2000:10000]))
    assert abs(np.fft.rfftfreq(8000, 1 / 16000)[spec.argmax()] - 440) < 10
    (frames,) = decode_frames(p, fps=5, size=16)
    assert frames.shape == (4, 16, 16, 3) and frames.dtype == np.uint8
    a, b = decode_frames(p, fps=10, size=8, segments=[(0.0, 0.3), (0.5, 0.8)])
    assert len(a) == 3 and len(b) == 3 and a[0].mean() < b[0].mean()


def test_raw_mmsa_loads_caches_and_trains(tmp_path):
    raw_mmsa_folder(tmp_path / "MOSEI")
    assert detect_format(tmp_path / "MOSEI") == "raw-mmsa"
    cache = tmp_path / "cache"
    ds = load_path(tmp_path / "MOSEI", cache_dir=str(cache), keep_raw=True, frame_size=16)
    assert ds.spec.dims == {"text": 64, "audio": 40, "video": 52} and ds.spec.score_range == (-3.0, 3.0)
    assert {s: c["utterances"] for s, c in ds.counts().items()} == {"train": 4, "valid": 1, "test": 1}
    u = ds.splits["train"][0].utterances[0]
    assert u.uid == "video_0000$_$0001" and u.dialogue_id == "video_0000" and u.score == pytest.approx(-2.4)
    assert u.raw.transcript == "hello, world 0" and u.raw.frames.shape[1:] == (16, 16, 3)
    assert ds.card["feature_cache"]["misses"] == 18 and ds.card["feature_cache"]["hits"] == 0
    again = DATASETS.create("raw-mmsa", path=str(tmp_path / "MOSEI"), cache_dir=str(cache), frame_size=16)
    assert again.card["feature_cache"] == {"dir": str(cache), "hits": 18, "misses": 0}
    assert torch.equal(again.utterances("test")[0].features["audio"], ds.utterances("test")[0].features["audio"])
    other = DATASETS.create("raw-mmsa", path=str(tmp_path / "MOSEI"), cache_dir=str(cache), frame_size=16,
                            audio="mfcc", video=None, task="classification")
    assert other.card["feature_cache"]["misses"] == 6 and other.spec.dims == {"text": 64, "audio": 26}
    model = MODELS.create("early-fusion", ds.spec, hidden=8)
    fit(model, ds, TrainConfig(epochs=1, batch_size=4), seed=0, device="cpu")
    metrics, _ = evaluate(model, ds.splits["test"], ds.spec, device="cpu")
    assert "mae" in metrics and np.isfinite(metrics["mae"])


def test_raw_mmsa_sims_unimodal_and_errors(tmp_path):
    raw_mmsa_folder(tmp_path / "SIMS", sims=True)
    ds = DATASETS.create("raw-mmsa", path=str(tmp_path / "SIMS"), label="T", cache_dir=str(tmp_path / "c"),
                         video=None, audio=None)
    assert ds.spec.score_range == (-1.0, 1.0) and ds.utterances("train")[0].score == pytest.approx(-0.4)
    (tmp_path / "SIMS" / "Raw" / "video_0002" / "0002.mp4").unlink()
    with pytest.raises(DataError, match=r"utterance 'video_0002\$_\$0002': media file\(s\) .*0002\.mp4.* not found"):
        DATASETS.create("raw-mmsa", path=str(tmp_path / "SIMS"), cache_dir=str(tmp_path / "c"), video=None)
    ds = DATASETS.create("raw-mmsa", path=str(tmp_path / "SIMS"), cache_dir=str(tmp_path / "c"), video=None,
                         missing="skip")
    assert ds.card["repairs"]["by_kind"] == {"missing_media_skipped": 1}


def test_raw_iemocap_release_layout(tmp_path):
    raw_iemocap_folder(tmp_path / "IEMOCAP_full_release")
    assert detect_format(tmp_path / "IEMOCAP_full_release") == "raw-iemocap"
    ds = load_path(tmp_path / "IEMOCAP_full_release", cache_dir=str(tmp_path / "c"))
    card = dataset_card(ds)
    assert ds.spec.num_classes == 6 and set(ds.spec.dims) == {"text", "audio"}
    assert [d.dialogue_id for d in ds.splits["test"]] == ["Ses05F_impro01"]
    assert len(ds.splits["valid"]) == 1 and len(ds.splits["train"]) == 2 and "held out" in card["validation"]
    assert card["repairs"]["by_kind"] == {"label_outside_classes_excluded": 4}  # the 'xxx' utterances
    d = ds.splits["test"][0]
    assert [u.uid for u in d] == ["Ses05F_impro01_F000", "Ses05F_impro01_M001"]  # F002 is 'xxx'
    assert [u.speaker for u in d] == [1, 0] and [u.label for u in d] == [2, 3]  # neu, ang
    assert d.utterances[1].raw is None and ds.card["repairs"]["items"][0]["uid"] == "Ses01F_impro01_F002"
    assert d.utterances[0].length("audio") == 1 + 8000 // 320


def test_raw_meld_csv_and_clips(tmp_path):
    raw_meld_folder(tmp_path / "MELD.Raw")
    assert detect_format(tmp_path / "MELD.Raw") == "raw-meld"
    ds = DATASETS.create("raw-meld", path=str(tmp_path / "MELD.Raw"), cache_dir=str(tmp_path / "c"), frame_size=16)
    assert {s: c["utterances"] for s, c in ds.counts().items()} == {"train": 4, "valid": 2, "test": 2}
    assert ds.spec.num_classes == 7 and ds.spec.num_speakers == 2
    u = ds.splits["train"][1].utterances[1]
    assert u.uid == "train_dia1_utt1" and u.label == 6 and u.speaker_name == "Rachel"  # anger
    model = MODELS.create("text-only", ds.spec, hidden=8)
    fit(model, ds, TrainConfig(epochs=1), seed=0, device="cpu")
    (tmp_path / "MELD.Raw" / "dev_sent_emo.csv").unlink()
    with pytest.raises(DataError, match=r"missing dev_sent_emo.csv \(split 'valid'\)"):
        DATASETS.create("raw-meld", path=str(tmp_path / "MELD.Raw"), cache_dir=str(tmp_path / "c"))


def test_raw_iemocap_video_cut_from_dialog_avi(tmp_path):
    root = tmp_path / "IEMOCAP_full_release"
    raw_iemocap_folder(root)
    for ev in root.glob("Session*/dialog/EmoEvaluation/*.txt"):
        write_mp4(ev.parents[1] / "avi" / "DivX" / f"{ev.stem}.avi", seconds=4.0, size=16, audio=False)
    ds = DATASETS.create("raw-iemocap", path=str(root), video="frame-stats", audio=None, cache_dir=str(tmp_path / "c"),
                         keep_raw=True, frame_size=16)
    a, b = ds.splits["test"][0].utterances  # [1.0, 1.5) and [2.0, 2.5) s at 10 fps
    assert a.raw.frames.shape == (5, 16, 16, 3) and b.length("video") == 5 and ds.spec.dims["video"] == 52
    assert abs(float(b.raw.frames.mean()) - float(a.raw.frames.mean()) - 50) < 8  # frame i is shaded 60 + 5 i
