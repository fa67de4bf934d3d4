import numpy as np
import pytest
import torch

from harness import DATASETS


def test_structure_raw_media_and_features(tiny_dataset):
    ds = tiny_dataset
    assert {s: c["dialogues"] for s, c in ds.counts().items()} == {"train": 8, "valid": 3, "test": 3}
    assert ds.spec.num_classes == 4 and ds.spec.num_speakers == 2
    for d in ds.splits["train"]:
        assert 3 <= len(d) <= 6
        assert {u.speaker for u in d} <= {0, 1}
        for i, u in enumerate(d):
            assert u.position == i and u.dialogue_id == d.dialogue_id
            assert u.raw.sample_rate == 16000 and u.raw.waveform.dtype == np.float32
            assert 0.6 <= u.raw.duration_s <= 1.2
            assert u.raw.frames.dtype == np.uint8 and u.raw.frames.shape[1:] == (32, 32, 3)
            assert u.raw.transcript
            for m, dim in ds.spec.dims.items():
                assert u.features[m].shape[1] == dim and torch.isfinite(u.features[m]).all()
    uids = [u.uid for s in ("train", "valid", "test") for u in ds.utterances(s)]
    assert len(set(uids)) == len(uids)


def test_same_seed_same_data_different_seed_differs():
    a = DATASETS.create("synthetic", n_train=2, n_valid=1, n_test=1, seed=7, keep_raw=False)
    b = DATASETS.create("synthetic", n_train=2, n_valid=1, n_test=1, seed=7, keep_raw=False)
    c = DATASETS.create("synthetic", n_train=2, n_valid=1, n_test=1, seed=8, keep_raw=False)
    ua, ub, uc = a.utterances("train")[0], b.utterances("train")[0], c.utterances("train")[0]
    assert torch.equal(ua.features["audio"], ub.features["audio"])
    assert not torch.equal(ua.features["audio"], uc.features["audio"]) or ua.label != uc.label


def test_audio_pitch_tracks_arousal():
    """The audio view carries arousal: high-arousal classes have a higher spectral centroid."""
    ds = DATASETS.create("synthetic", n_train=20, n_valid=1, n_test=1, seed=3)
    high, low = [], []
    for u in ds.utterances("train"):
        spec = np.abs(np.fft.rfft(u.raw.waveform))
        f = np.fft.rfftfreq(len(u.raw.waveform), 1 / 16000)
        centroid = float((spec[f < 1000] * f[f < 1000]).sum() / spec[f < 1000].sum())
        (high if u.label in (1, 3) else low).append(centroid)
    assert np.mean(high) > np.mean(low) + 20


def test_regression_task_has_scores(tiny_regression_dataset):
    ds = tiny_regression_dataset
    assert ds.spec.task == "regression" and ds.spec.output_dim == 1
    scores = [u.score for u in ds.utterances("train")]
    assert all(-3 <= s <= 3 for s in scores)
    assert min(scores) < 0 < max(scores)


@pytest.mark.parametrize("kw,msg", [({"n_train": 0}, r"'n_train' does not allow 0: must lie in \[1, inf\)"),
                                    ({"text_cue_prob": 1.5}, r"'text_cue_prob' does not allow 1.5: must lie in \[0, 1\]"),
                                    ({"task": "ranking"}, "'task' does not allow 'ranking': must be one of")])
def test_bad_options(kw, msg):
    with pytest.raises(ValueError, match=msg):
        DATASETS.create("synthetic", **kw)
