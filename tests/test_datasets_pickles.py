"""MMSA, MulT and ERC pickle loaders, the restricted unpickler, detection and the card."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from fixtures_datasets import (
    Evil,
    erc_tuple,
    mmsa_dict,
    mult_dict,
    poisoned_dataset_objects,
    py2_dumps,
    write_pickle,
    write_py2,
)

from harness import DATASETS, MODELS
from harness.datasets.detect import PUBLISHED_SHA256, dataset_card, detect_format, load_path
from harness.datasets.erc_pickle import LAYOUTS
from harness.datasets.safe_pickle import BlockedGlobalError, safe_load
from harness.errors import DataError
from harness.train import TrainConfig, evaluate, fit

# ------------------------------------------------------------------ safe unpickling


def test_py2_pickle_needs_latin1_and_loads_safely(tmp_path):
    obj = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "spk": ["M", "F"], "ids": {"a", "b"}}
    data = py2_dumps(obj)
    assert b"numpy.core.multiarray" in data and b"__builtin__\nset" in data
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(data)  # the default ascii decoding fails on py2 array bytes
    out = safe_load(write_py2(tmp_path / "p.pkl", obj))
    assert np.array_equal(out["x"], obj["x"]) and out["spk"] == ["M", "F"] and out["ids"] == {"a", "b"}


def test_protocol5_pickle_loads(tmp_path):
    obj = {"x": np.ones((2, 3), dtype=np.float32), "s": np.array(["a", "b"])}
    data = pickle.dumps(obj, protocol=5)
    assert b"_frombuffer" in data
    out = safe_load(write_pickle(tmp_path / "p5.pkl", obj, protocol=5))
    assert np.array_equal(out["x"], obj["x"]) and list(out["s"]) == ["a", "b"]


def _malicious_files(tmp_path, sentinel):
    objs = poisoned_dataset_objects(Evil(str(sentinel)))
    return {"mmsa": write_pickle(tmp_path / "m.pkl", objs["mmsa"]),
            "mult-pickle": write_pickle(tmp_path / "mu.pkl", objs["mult"]),
            "erc-pickle": write_pickle(tmp_path / "e.pkl", objs["erc"], protocol=2)}


def test_malicious_pickle_refused_by_every_loader(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    for fmt, path in _malicious_files(tmp_path, sentinel).items():
        with pytest.raises(BlockedGlobalError, match=r"blocked global (posix|os|nt)\.system"):
            DATASETS.create(fmt, path=path)
        with pytest.raises(BlockedGlobalError, match=r"blocked global .*system"):
            load_path(path)
        with pytest.raises(BlockedGlobalError, match=str(path).replace(".", r"\.")):
            detect_format(path)
    assert not sentinel.exists()


def test_cli_data_inspect_refuses_malicious_and_prints_card(tmp_path, capsys):
    import json

    from harness.run.cli import main

    sentinel = tmp_path / "SENTINEL"
    assert main(["data", "inspect", _malicious_files(tmp_path, sentinel)["erc-pickle"]]) == 2
    assert "blocked global" in capsys.readouterr().err and not sentinel.exists()
    path = write_py2(tmp_path / "IEMOCAP_features.pkl", erc_tuple("dialoguernn-iemocap-9"))
    assert main(["data", "inspect", path, "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["format"] == "erc-pickle" and card["dims"] == {"text": 10, "audio": 12, "video": 7}


def test_pickle_with_torch_tensors_is_refused(tmp_path):
    path = write_pickle(tmp_path / "pt.pkl", {"train": {"audio": torch.zeros(2, 3)}})
    with pytest.raises(BlockedGlobalError, match=r"blocked global torch\..*embedded torch tensors"):
        load_path(path)


def test_truncated_pickle_is_named(tmp_path):
    path = tmp_path / "aligned_50.pkl"
    data = pickle.dumps(mmsa_dict("aligned"), protocol=4)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"aligned_50\.pkl: truncated or corrupt pickle"):
        DATASETS.create("mmsa", path=str(path))


# ------------------------------------------------------------------ MMSA


def test_mmsa_unaligned_counts_dims_lengths_and_neg_inf_repair(tmp_path):
    raw = mmsa_dict("unaligned")
    ds = DATASETS.create("mmsa", path=write_pickle(tmp_path / "unaligned_50.pkl", raw))
    assert ds.spec.task == "regression" and ds.spec.dims == {"text": 8, "audio": 5, "video": 4}
    assert ds.spec.score_range == (-3.0, 3.0)
    assert {s: c["utterances"] for s, c in ds.counts().items()} == {"train": 3, "valid": 2, "test": 2}
    assert {s: c["dialogues"] for s, c in ds.counts().items()} == {"train": 2, "valid": 2, "test": 2}
    u = ds.splits["train"][0].utterances[0]
    assert u.uid == "trainvid0$_$0" and u.dialogue_id == "trainvid0"
    assert u.length("audio") == raw["train"]["audio_lengths"][0]
    assert u.length("video") == int(raw["train"]["vision_lengths"][0])
    assert u.length("text") == int(raw["train"]["text_bert"][0, 1].sum())
    assert u.features["audio"][0, 0] == 0.0 and torch.isfinite(u.features["audio"]).all()
    assert u.score == pytest.approx(float(raw["train"]["regression_labels"][0]))
    rep = ds.card["repairs"]
    assert rep["by_kind"] == {"neg_inf_to_zero": 1}
    assert rep["items"][0]["uid"] == "trainvid0$_$0" and rep["items"][0]["key"] == "train/audio"


def test_mmsa_aligned_protocol5_and_classification(tmp_path):
    raw = mmsa_dict("aligned", neg_inf=False)
    path = write_pickle(tmp_path / "aligned.pkl", raw, protocol=5)
    ds = DATASETS.create("mmsa", path=path, task="classification")
    assert ds.spec.num_classes == 3 and ds.card["variant"] == "aligned"
    u = ds.utterances("test")[1]
    n = int(raw["test"]["text_bert"][1, 1].sum())
    assert u.length("text") == u.length("audio") == u.length("video") == n
    assert u.label == int(raw["test"]["classification_labels"][1])
    assert ds.card["repairs"]["total"] == 0


def test_mmsa_sims_unimodal_labels(tmp_path):
    raw = mmsa_dict("sims")
    path = write_pickle(tmp_path / "unaligned_39.pkl", raw)
    ds = DATASETS.create("mmsa", path=path, label="A")
    assert ds.spec.score_range == (-1.0, 1.0) and ds.card["variant"] == "sims"
    assert ds.utterances("valid")[0].score == pytest.approx(float(raw["valid"]["regression_labels_A"][0]))
    raw["train"]["regression_labels_T"] = list(raw["train"]["regression_labels_T"])
    with pytest.raises(DataError, match="'regression_labels_T' must be a NumPy array"):
        DATASETS.create("mmsa", path=write_pickle(tmp_path / "bad.pkl", raw))


def _mutate(fn):
    raw = mmsa_dict("unaligned")
    fn(raw)
    return raw


@pytest.mark.parametrize("mutate,msg", [
    (lambda r: r.pop("valid"), r"missing split 'valid'"),
    (lambda r: r["test"].pop("vision"), r"split 'test' has no key 'vision'"),
    (lambda r: r["train"].update(audio=r["train"]["audio"][:2]), r"key 'audio' has 2 samples but 'id' has 3"),
    (lambda r: r["train"]["vision"].__setitem__((1, 0, 0), np.nan),
     r"key 'train/vision', utterance 'trainvid1\$_\$1': 1 non-finite feature value\(s\) \(NaN\)"),
    (lambda r: r["valid"]["regression_labels"].__setitem__(0, 7.5),
     r"key 'valid/regression_labels', utterance 'validvid0\$_\$0': label 7.5 out of range \[-3.0, 3.0\]"),
    (lambda r: r["train"].__setitem__("audio_lengths", [0, 1, 1]), r"key 'audio_lengths'\[0\] = 0 outside 1..9"),
])
def test_mmsa_malformed_inputs_are_named(tmp_path, mutate, msg):
    path = write_pickle(tmp_path / "bad.pkl", _mutate(mutate))
    with pytest.raises(DataError, match=msg):
        DATASETS.create("mmsa", path=path)


def test_mmsa_nan_repair_option_is_counted(tmp_path):
    raw = _mutate(lambda r: r["train"]["vision"].__setitem__((1, 0, 0), np.nan))
    ds = DATASETS.create("mmsa", path=write_pickle(tmp_path / "n.pkl", raw), nonfinite="zero")
    assert ds.card["repairs"]["by_kind"] == {"neg_inf_to_zero": 1, "nonfinite_to_zero": 1}


# ------------------------------------------------------------------ MulT


def test_mult_mosi_noalign_bytes_ids_and_left_padding(tmp_path):
    raw = mult_dict()
    ds = DATASETS.create("mult-pickle", path=write_pickle(tmp_path / "mosi_data_noalign.pkl", raw, protocol=2))
    assert ds.spec.task == "regression" and ds.spec.dims == {"text": 6, "audio": 3, "video": 4}
    u = ds.utterances("train")[0]
    assert u.uid == "trainvid0$_$0" and u.dialogue_id == "trainvid0"
    real = int(np.any(raw["train"]["audio"][0] != 0, axis=1).sum())
    assert u.length("audio") == real and torch.all(u.features["audio"].abs().sum(1) > 0)


def test_mult_iemocap_four_classes(tmp_path):
    raw = mult_dict(iemocap=True, n=(4, 2, 2))
    ds = DATASETS.create("mult-pickle", path=write_pickle(tmp_path / "iemocap_data.pkl", raw))
    assert ds.spec.task == "classification" and ds.spec.class_names == ("neutral", "happy", "sad", "angry")
    assert [u.label for u in ds.utterances("train")] == [0, 1, 2, 3]


# ------------------------------------------------------------------ ERC tuples

EXPECTED_MODALITIES = {
    "dialoguernn-iemocap-9": {"text", "audio", "video"}, "dialoguernn-meld-9": {"text", "audio"},
    "mmgcn-meld-10": {"text", "audio", "video"}, "cosmic-iemocap-10": {"text"}, "cosmic-meld-11": {"text"},
    "sdt-12": {"text", "audio", "video"}, "sdt-meld-13": {"text", "audio", "video"},
    "graphsmile-meld-14": {"text", "audio", "video"},
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_erc_every_layout(tmp_path, layout):
    obj = erc_tuple(layout)
    meld = "meld" in layout
    writer = write_pickle if meld else write_py2  # IEMOCAP files are Python-2 pickles
    path = writer(tmp_path / f"{layout}.pkl", obj)
    assert detect_format(path) == "erc-pickle"
    ds = DATASETS.create("erc-pickle", path=path)
    assert ds.card["layout"] == layout and set(ds.spec.dims) == EXPECTED_MODALITIES[layout]
    assert ds.spec.num_classes == (7 if meld else 6) and ds.spec.num_speakers == (9 if meld else 2)
    train_ids = list(obj[LAYOUTS[layout].index("train")])
    n_train = len(ds.splits["train"]) + (0 if "valid" in LAYOUTS[layout] else len(ds.splits["valid"]))
    assert n_train == len(train_ids) and len(ds.splits["test"]) == 2
    if "valid" in LAYOUTS[layout]:
        assert ds.card["validation"] == "shipped in the file" and len(ds.splits["valid"]) == 1
    else:
        assert len(ds.splits["valid"]) == 1 and "held out (valid_fraction=0.1, seed=0)" in ds.card["validation"]
    labels = obj[LAYOUTS[layout].index("labels")]
    for d in ds.splits["test"]:
        key = int(d.dialogue_id) if meld else d.dialogue_id
        assert [u.label for u in d] == list(labels[key])
        assert [u.position for u in d] == list(range(len(d)))
    if not meld:
        u = ds.utterances("test")[0]
        assert u.speaker_name in ("M", "F") and u.speaker == (0 if u.speaker_name == "M" else 1)


def test_erc_valid_holdout_is_seeded_and_disjoint(tmp_path):
    path = write_py2(tmp_path / "IEMOCAP_features.pkl", erc_tuple("dialoguernn-iemocap-9", n_train=10))
    a = DATASETS.create("erc-pickle", path=path, seed=3)
    b = DATASETS.create("erc-pickle", path=path, seed=3)
    ids = lambda ds, s: [d.dialogue_id for d in ds.splits[s]]  # noqa: E731
    assert ids(a, "valid") == ids(b, "valid") and len(ids(a, "valid")) == 1
    assert not set(ids(a, "valid")) & set(ids(a, "train")) and len(ids(a, "train")) == 9


def test_erc_sentiment_labels(tmp_path):
    obj = erc_tuple("dialoguernn-meld-9")
    ds = DATASETS.create("erc-pickle", path=write_pickle(tmp_path / "m.pkl", obj), label="sentiment")
    assert ds.spec.class_names == ("neutral", "positive", "negative")
    d = ds.splits["test"][0]
    assert [u.label for u in d] == obj[8][int(d.dialogue_id)]


def _erc_bad(fn):
    obj = list(erc_tuple("dialoguernn-iemocap-9"))
    fn(obj)
    return tuple(obj)


@pytest.mark.parametrize("mutate,msg", [
    (lambda o: o[2]["Ses01F_impro00"].append(1), r"dialogue 'Ses01F_impro00': key 'speakers' has \d items but 'labels' has"),
    (lambda o: o[2]["Ses01F_impro01"].__setitem__(0, 6), r"key 'labels', utterance 'Ses01F_impro01_F000': label 6 out of range 0..5"),
    (lambda o: [o[i].__setitem__("Ses01F_impro02", []) for i in range(7)], r"dialogue 'Ses01F_impro02' has no utterances"),
    (lambda o: o[4]["Ses01F_impro00"].__setitem__(1, np.full(12, np.inf, np.float32)),
     r"key 'audio', utterance 'Ses01F_impro00_F001': 12 non-finite feature value\(s\) \(\+inf\)"),
    (lambda o: o[3].pop("Ses02F_impro00"), r"dialogue 'Ses02F_impro00' of split 'train' is absent from key 'text'"),
    (lambda o: o[5]["Ses01F_impro00"].__setitem__(1, np.ones(3, np.float32)), r"key .video., utterance .Ses01F_impro00_F001.: feature dim 3 differs from 7"),
    (lambda o: o.pop(), r"a 8-tuple with slot types .* matches no known layout"),
])
def test_erc_malformed_inputs_are_named(tmp_path, mutate, msg):
    path = write_py2(tmp_path / "bad.pkl", _erc_bad(mutate))
    with pytest.raises(DataError, match=msg):
        DATASETS.create("erc-pickle", path=path)


# ------------------------------------------------------------------ detect, card, training


def test_detect_and_card_with_checksums(tmp_path):
    (tmp_path / "MOSI" / "Processed").mkdir(parents=True)
    p = write_pickle(tmp_path / "MOSI" / "Processed" / "unaligned_50.pkl", mmsa_dict())
    assert detect_format(p) == "mmsa"
    assert detect_format(write_pickle(tmp_path / "mosi_data.pkl", mult_dict())) == "mult-pickle"
    ds = load_path(p)
    card = dataset_card(ds)
    assert card["checksum"]["match"] is False
    assert card["checksum"]["published"] == PUBLISHED_SHA256["MOSI/Processed/unaligned_50.pkl"]
    assert card["dims"] == {"text": 8, "audio": 5, "video": 4} and card["repairs"]["total"] == 1
    assert card["splits"]["train"] == {"dialogues": 2, "utterances": 3}
    assert set(card["lengths"]) == {"text", "audio", "video"} and "mean" in card["labels"]["train"]
    import json
    json.dumps(card)
    with pytest.raises(Exception, match="no option 'bogus'"):
        load_path(p, bogus=1)
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(DataError, match=r"junk\.pkl: unrecognised pickle content: a dict with keys \['a'\]"):
        detect_format(junk)


@pytest.mark.parametrize("kind", ["mmsa", "mult", "erc"])
def test_models_train_and_evaluate_on_each_family(tmp_path, kind):
    if kind == "mmsa":
        ds = load_path(write_pickle(tmp_path / "a.pkl", mmsa_dict(n=(6, 2, 2))))
        model_name = "early-fusion"
    elif kind == "mult":
        ds = load_path(write_pickle(tmp_path / "b.pkl", mult_dict(iemocap=True, n=(8, 4, 4))))
        model_name = "early-fusion"
    else:
        ds = load_path(write_py2(tmp_path / "c.pkl", erc_tuple("sdt-12", n_train=6)))
        model_name = "text-only"
    model = MODELS.create(model_name, ds.spec, hidden=8)
    result = fit(model, ds, TrainConfig(epochs=1, batch_size=4), seed=0, device="cpu")
    metrics, preds = evaluate(model, ds.splits["test"], ds.spec, device="cpu")
    assert result.epochs_run == 1 and len(preds.uids) == len(ds.utterances("test"))
    assert all(np.isfinite(v) for v in metrics.values())
