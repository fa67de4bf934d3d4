"""CMU-MultimodalSDK .csd loader: word alignment with average collapse, b'sp' rows, folds."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from fixtures_datasets import csd_folder, write_csd

from harness import DATASETS, MODELS
from harness.datasets.detect import dataset_card, detect_format, load_path
from harness.errors import DataError
from harness.train import TrainConfig, evaluate, fit

FOLDS = {"train": ["vid_0", "vid_1", "vid_2"], "valid": ["vid_3"], "test": ["vid_4"]}


def test_csd_alignment_words_sp_and_folds(tmp_path):
    raw = csd_folder(tmp_path / "mosi")
    ds = DATASETS.create("csd", path=str(tmp_path / "mosi"), folds=FOLDS)
    assert ds.spec.dims == {"text": 6, "audio": 5, "video": 3}
    assert {s: c["utterances"] for s, c in ds.counts().items()} == {"train": 6, "valid": 2, "test": 2}
    assert [d.dialogue_id for d in ds.splits["train"]] == FOLDS["train"]
    u0, u1 = ds.splits["train"][0].utterances
    assert u0.uid == "vid_0[0]" and u1.uid == "vid_0[1]"
    # segment [0, 1.6] overlaps words 0..3 = sp, hello, world, sp -> 2 real words
    assert u0.raw.transcript == "hello world" and u0.length("text") == 2
    assert u1.raw.transcript == "this is good" and u1.length("audio") == 3
    assert torch.allclose(u0.features["text"], torch.from_numpy(raw["text"]["vid_0"][0][1:3]))
    # word "hello" = [0.5, 1.0]: audio rows 5..9 overlap it -> their mean
    assert torch.allclose(u0.features["audio"][0], torch.from_numpy(raw["audio"]["vid_0"][0][5:10].mean(0)), atol=1e-6)
    assert torch.allclose(u0.features["video"][0], torch.from_numpy(raw["video"]["vid_0"][0][2:4].mean(0)), atol=1e-6)
    assert u0.score == pytest.approx(float(raw["labels"]["vid_0"][0][0, 0]))
    assert ds.card["validation"].startswith("standard folds") and ds.card["repairs"]["total"] == 0
    assert ds.card["roots"]["labels"] == "Opinion Segment Labels"


def test_csd_detect_folds_file_card_and_training(tmp_path):
    csd_folder(tmp_path / "d", label_width=7)
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps(FOLDS))
    assert detect_format(tmp_path / "d") == "csd"
    assert detect_format(tmp_path / "d" / "CMU_MOSI_COVAREP.csd") == "csd"
    ds = load_path(tmp_path / "d", folds=str(folds), task="classification")
    card = dataset_card(ds)
    assert card["format"] == "csd" and card["checksum"]["match"] is None and card["dims"]["audio"] == 5
    model = MODELS.create("early-fusion", ds.spec, hidden=8)
    fit(model, ds, TrainConfig(epochs=1, batch_size=4), seed=0, device="cpu")
    metrics, preds = evaluate(model, ds.splits["test"], ds.spec, device="cpu")
    assert len(preds.uids) == 2 and "wf1" in metrics


def test_csd_without_folds_uses_seeded_video_split_and_words_only_text(tmp_path):
    csd_folder(tmp_path / "d")
    (tmp_path / "d" / "CMU_MOSI_TimestampedWordVectors.csd").unlink()
    ds = DATASETS.create("csd", path=str(tmp_path / "d"), seed=1)
    assert "no folds given" in ds.card["validation"]
    assert sum(len(v) for v in ds.splits.values()) == 5 and ds.spec.dims["text"] == 64
    assert "hash-embed" in ds.card["dims_provenance"]["text"]


def test_csd_missing_video_is_counted_and_bad_files_named(tmp_path):
    raw = csd_folder(tmp_path / "d")
    del raw["audio"]["vid_2"]
    write_csd(tmp_path / "d" / "CMU_MOSI_COVAREP.csd", "COVAREP", raw["audio"])
    ds = DATASETS.create("csd", path=str(tmp_path / "d"), folds={**FOLDS, "train": ["vid_0", "vid_1"]})
    assert ds.card["repairs"]["by_kind"]["video_missing_from_other_sequences"] == 4  # vid_2 in 4 other sequences
    p = tmp_path / "d" / "CMU_MOSI_Visual_Facet_41.csd"
    with h5py.File(p, "r+") as f:
        del f["FACET_4.1/data/vid_0/intervals"]
        f["FACET_4.1/data/vid_0"].create_dataset("intervals", data=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"Facet_41\.csd: entry 'vid_0': features shape \(16, 3\) does not match"):
        DATASETS.create("csd", path=str(tmp_path / "d"), folds=FOLDS)
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(DataError, match=r"Facet_41\.csd: not a readable HDF5"):
        DATASETS.create("csd", path=str(tmp_path / "d"), folds=FOLDS)


def test_csd_label_out_of_range_named(tmp_path):
    raw = csd_folder(tmp_path / "d")
    raw["labels"]["vid_1"][0][1, 0] = 4.0
    write_csd(tmp_path / "d" / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", raw["labels"])
    with pytest.raises(DataError, match=r"utterance 'vid_1\[1\]': label 4.0 out of range"):
        DATASETS.create("csd", path=str(tmp_path / "d"), folds=FOLDS)


def test_average_collapse_fast_path_matches_row_by_row():
    from harness.datasets.csd import average_collapse

    rng = np.random.default_rng(0)
    starts = np.sort(rng.uniform(0, 10, 200))
    iv = np.stack([starts, starts + 0.07], 1)
    feats = rng.normal(size=(200, 4))
    ref = np.array([[0.0, 0.5], [2.0, 2.01], [9.9, 12.0], [20.0, 21.0]])
    fast, empty = average_collapse(ref, feats, iv)
    shuffled = rng.permutation(200)  # unsorted intervals take the row-by-row path
    slow, empty2 = average_collapse(ref, feats[shuffled], iv[shuffled])
    assert np.allclose(fast, slow, atol=1e-5) and (empty == empty2).all() and empty[3] and not empty[0]
