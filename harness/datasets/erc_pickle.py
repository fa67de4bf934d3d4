"""Conversation-level ERC pickles (IEMOCAP, MELD): every tuple layout of docs/FORMATS.md §3.

The layout is chosen by tuple length and the types of its elements, then every dialogue is
validated (equal per-utterance container lengths, one feature dim per modality, labels in
range, train/test ids present). Features are utterance vectors, stored as ``[1, D]``.
Files without a validation split get a fixed seeded share of train dialogues held out.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from harness.data.types import BenchDataset, DataSpec, Dialogue, Utterance
from harness.datasets.safe_pickle import safe_load, sha256_file
from harness.datasets.spec_only import spec_dataset, spec_only
from harness.datasets.validate import (
    HeldOutFraction,
    Nonfinite,
    RepairLog,
    check_dims,
    check_label,
    held_out_valid,
    names_the_file,
    to_features,
)
from harness.errors import DataError
from harness.options import DataPath
from harness.registry import DATASETS

IEMOCAP_CLASSES = ("hap", "sad", "neu", "ang", "exc", "fru")
IEMOCAP_CLASSES_4 = ("hap", "sad", "neu", "ang")
# the common 4-class IEMOCAP setup (as raw-iemocap classes=4): exc merged into hap, fru left out
IEMOCAP_TO_4 = {0: 0, 1: 1, 2: 2, 3: 3, 4: 0}
ClassCount = Literal[None, 3, 4, 6, 7]  # None: every class of the label
Label = Literal["emotion", "sentiment"]
Corpus = Literal["auto", "iemocap", "meld"]
MELD_CLASSES = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
MELD_SENTIMENTS = ("neutral", "positive", "negative")
SENTIMENT3 = ("negative", "neutral", "positive")
# GraphSmile's IEMOCAP sentiment: {sad, ang, fru} -> negative, neu -> neutral, {hap, exc} -> positive
IEMOCAP_TO_SENTIMENT = {0: 2, 1: 0, 2: 1, 3: 0, 4: 2, 5: 0}

# role of every tuple slot, per layout; "_" slots are ignored
LAYOUTS: dict[str, tuple[str, ...]] = {
    "dialoguernn-iemocap-9": ("ids", "speakers", "labels", "text", "audio", "video", "sentences", "train", "test"),
    "dialoguernn-meld-9": ("ids", "speakers", "labels", "text", "audio", "sentences", "train", "test", "sentiment"),
    "mmgcn-meld-10": ("ids", "speakers", "labels", "text", "audio", "video", "sentences", "train", "test", "_"),
    "cosmic-iemocap-10": ("speakers", "labels", "text", "_", "_", "_", "sentences", "train", "test", "valid"),
    "cosmic-meld-11": ("speakers", "labels", "sentiment", "text", "_", "_", "_", "sentences", "train", "test", "valid"),
    "sdt-12": ("ids", "speakers", "labels", "text", "_", "_", "_", "audio", "video", "sentences", "train", "test"),
    "sdt-meld-13": ("ids", "speakers", "labels", "text", "_", "_", "_", "audio", "video", "sentences", "train", "test",
                    "_"),
    "graphsmile-meld-14": ("ids", "speakers", "labels", "sentiment", "text", "_", "_", "_", "audio", "video",
                           "sentences", "train", "test", "_"),
}
FEATURE_ROLES = ("text", "audio", "video")


def _first_items(d: dict) -> list:
    """The per-utterance container of the first dialogue of a dict slot (as a list)."""
    first = next(iter(d.values()))
    return list(first) if not isinstance(first, (str, bytes)) else [first]


def _slot_kind(x: Any) -> str:
    """Coarse type of one tuple slot: ids/str lists, int lists, float features, one-hot, split list."""
    if isinstance(x, dict):
        if not x:
            return "empty-dict"
        items = _first_items(x)
        if not items:
            return "dict-empty-list"
        v = items[0]
        if isinstance(v, str):
            return "dict-str"
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return "dict-int"
        arr = np.asarray(v)
        if arr.dtype.kind in "iuf" and arr.ndim == 0:
            return "dict-int" if float(arr).is_integer() and arr.dtype.kind in "iu" else "dict-float-scalar"
        if arr.dtype.kind in "iuf" and arr.ndim == 1:
            if set(np.unique(arr).tolist()) <= {0, 1} and arr.sum() == 1 and len(arr) <= 16:
                return "dict-onehot"
            return "dict-features"
        return f"dict-{type(v).__name__}"
    if isinstance(x, (list, tuple, set, frozenset, np.ndarray)) or hasattr(x, "__iter__"):
        return "ids"
    return type(x).__name__


ROLE_KINDS = {
    "ids": {"dict-str"}, "sentences": {"dict-str"}, "speakers": {"dict-str", "dict-onehot"},
    "labels": {"dict-int"}, "sentiment": {"dict-int"}, "text": {"dict-features"}, "audio": {"dict-features"},
    "video": {"dict-features"}, "train": {"ids"}, "test": {"ids"}, "valid": {"ids"},
}


def detect_layout(obj: Any, source: str) -> str:
    """Name of the layout in :data:`LAYOUTS` that ``obj`` (a tuple) matches, else ``DataError``."""
    if not isinstance(obj, (tuple, list)):
        raise DataError(f"{source}: an ERC pickle is a tuple of dicts, got {type(obj).__name__}")
    kinds = [_slot_kind(x) for x in obj]
    candidates = [name for name, roles in LAYOUTS.items() if len(roles) == len(obj)
                  and all(r == "_" or k in ROLE_KINDS[r] for r, k in zip(roles, kinds))]
    if len(candidates) != 1:
        known = ", ".join(f"{n} ({len(r)})" for n, r in LAYOUTS.items())
        what = "matches several layouts " + str(candidates) if candidates else "matches no known layout"
        raise DataError(f"{source}: a {len(obj)}-tuple with slot types {kinds} {what}; known layouts: {known}")
    return candidates[0]


def _ids(x: Any) -> list:
    return list(x)


def _speaker_index(s: Any, source: str, vid: str, uid: str) -> tuple[int, str]:
    if isinstance(s, str):
        return (0 if s == "M" else 1), s
    arr = np.asarray(s, dtype=float).reshape(-1)
    if arr.ndim != 1 or arr.sum() != 1:
        raise DataError(f"{source}: key 'speakers', dialogue {vid!r}, utterance {uid!r}: speaker {s!r} is not "
                        f"'M'/'F' or a one-hot vector")
    i = int(arr.argmax())
    return i, f"speaker{i}"


@DATASETS.register("erc-pickle", task="classification", source="DialogueRNN/MMGCN/SDT/GraphSmile/COSMIC pickles")
def erc_pickle(path: DataPath, label: Label = "emotion", dataset: Corpus = "auto",
               valid_fraction: HeldOutFraction = 0.1, seed: int = 0, nonfinite: Nonfinite = "error",
               name: str | None = None, classes: ClassCount = None) -> BenchDataset:
    """Conversation pickle of IEMOCAP or MELD (9/10/11/12/13/14-tuple, detected).

    ``label``: ``"emotion"`` (6 IEMOCAP / 7 MELD classes) or ``"sentiment"`` (3 classes; for
    IEMOCAP derived as GraphSmile does). ``dataset``: ``"auto"`` (from the speaker encoding:
    'M'/'F' is IEMOCAP, one-hot is MELD), ``"iemocap"`` or ``"meld"``. ``classes``: ``None``
    (every class of the label), or ``4`` for the common 4-class IEMOCAP emotion setup (hap, sad,
    neu, ang: exc merged into hap, fru utterances left out and counted in the card).
    """
    obj = safe_load(path)
    return erc_from_object(obj, str(path), label=label, dataset=dataset, valid_fraction=valid_fraction, seed=seed,
                           nonfinite=nonfinite, name=name, sha256=sha256_file(path), classes=classes)


@names_the_file
def erc_from_object(obj: Any, source: str, label: str = "emotion", dataset: str = "auto", valid_fraction: float = 0.1,
                    seed: int = 0, nonfinite: str = "error", name: str | None = None,
                    sha256: str | None = None, classes: int | None = None) -> BenchDataset:
    """Build the dataset from an already (safely) unpickled ERC tuple; see :func:`erc_pickle`
    (whose declared options these are: callers check them, as ``DATASETS.create`` does)."""
    layout = detect_layout(obj, source)
    slots = {r: obj[i] for i, r in enumerate(LAYOUTS[layout]) if r != "_"}
    speakers = slots["speakers"]
    if dataset == "auto":
        dataset = "iemocap" if _slot_kind(speakers) == "dict-str" else "meld"
    if label == "emotion":
        class_names = IEMOCAP_CLASSES if dataset == "iemocap" else MELD_CLASSES
        label_key = "labels"
    elif "sentiment" in slots:
        class_names, label_key = MELD_SENTIMENTS, "sentiment"
    elif dataset == "iemocap":
        class_names, label_key = SENTIMENT3, "labels"
    else:
        raise DataError(f"{source}: label='sentiment' but layout {layout} has no sentiment labels")
    derive_sentiment = label == "sentiment" and label_key == "labels"
    four_class = classes == 4 and dataset == "iemocap" and label == "emotion"
    if classes is not None and classes != len(class_names) and not four_class:
        raise ValueError(f"erc-pickle: classes={classes!r} is not available for dataset {dataset!r} with "
                         f"label={label!r}: give None or {len(class_names)} (every class), or 4 for IEMOCAP emotions "
                         f"(hap+exc, sad, neu, ang; fru left out)")
    if four_class:
        class_names = IEMOCAP_CLASSES_4
    left_out = 0
    repairs = RepairLog(source)
    modalities = [m for m in FEATURE_ROLES if m in slots]
    dims: dict[str, int] = {}
    per_dialogue = ["speakers", "labels", "sentences", *modalities] + (["ids"] if "ids" in slots else []) \
        + (["sentiment"] if "sentiment" in slots else [])

    split_ids = {s: _ids(slots[s]) for s in ("train", "test", "valid") if s in slots}
    seen: dict[str, str] = {}
    for s, ids in split_ids.items():
        for vid in ids:
            if vid in seen and seen[vid] != s:
                raise DataError(f"{source}: dialogue {vid!r} is listed in both {seen[vid]!r} and {s!r} splits")
            seen[vid] = s
            for key in per_dialogue:
                if vid not in slots[key]:
                    raise DataError(f"{source}: dialogue {vid!r} of split {s!r} is absent from key {key!r}")

    def data_spec(dims: dict[str, int], speakers_n: int) -> DataSpec:
        return DataSpec(dims=dims, task="classification", num_classes=len(class_names), num_speakers=speakers_n,
                        class_names=tuple(class_names))

    first = next(iter(split_ids.get("train", [])), None)
    if spec_only() and first is not None:  # widths from the first utterance, speakers from every one
        for m in modalities:
            check_dims(dims, m, to_features(slots[m][first][0], source=source, key=m, uid=f"{first}[0]",
                                            repairs=repairs, nonfinite=nonfinite), source, m, f"{first}[0]")
        speakers_n = 2 if dataset == "iemocap" else max(9, 1 + max(
            _speaker_index(s, source, str(vid), "?")[0] for ids in split_ids.values() for vid in ids
            for s in slots["speakers"][vid]))
        return spec_dataset(name or f"{dataset}-{layout}", data_spec(dims, speakers_n),
                            {"source": source, "format": "erc-pickle", "layout": layout})

    def build(vid: Any) -> Dialogue:
        did = str(vid)
        n = len(slots["labels"][vid])
        if n == 0:
            raise DataError(f"{source}: dialogue {did!r} has no utterances (key 'labels' is empty)")
        for key in per_dialogue:
            if len(slots[key][vid]) != n:
                raise DataError(f"{source}: dialogue {did!r}: key {key!r} has {len(slots[key][vid])} items but "
                                f"'labels' has {n}")
        nonlocal left_out
        utts = []
        for i in range(n):
            uid = str(slots["ids"][vid][i]) if "ids" in slots else f"{did}_{i}"
            feats = {}
            for m in modalities:
                x = to_features(slots[m][vid][i], source=source, key=m, uid=uid, repairs=repairs, nonfinite=nonfinite)
                check_dims(dims, m, x, source, m, uid)
                feats[m] = x
            y = check_label(slots[label_key][vid][i], 6 if derive_sentiment or four_class else len(class_names),
                            source, label_key, uid)
            if derive_sentiment:
                y = IEMOCAP_TO_SENTIMENT[y]
            if four_class:
                if y not in IEMOCAP_TO_4:
                    left_out += 1
                    continue
                y = IEMOCAP_TO_4[y]
            spk, spk_name = _speaker_index(slots["speakers"][vid][i], source, did, uid)
            utts.append(Utterance(uid=uid, dialogue_id=did, position=len(utts), speaker=spk, features=feats, label=y,
                                  speaker_name=spk_name))
        return Dialogue(did, utts)

    card: dict[str, Any] = {"source": source, "format": "erc-pickle", "layout": layout, "dataset": dataset,
                            "label": label, "sha256": sha256}
    train_ids = split_ids["train"]
    if "valid" in split_ids:
        valid_ids = split_ids["valid"]
        card["validation"] = "shipped in the file"
    else:
        train_ids, valid_ids, card["validation"] = held_out_valid(train_ids, valid_fraction, seed)
    splits = {s: [d for d in (build(v) for v in ids) if d.utterances]  # a dialogue of only fru is left out
              for s, ids in (("train", train_ids), ("valid", valid_ids), ("test", split_ids["test"]))}
    if four_class:
        card["classes"] = "4 (hap+exc, sad, neu, ang; fru left out)"
        if left_out:
            repairs.add("label_outside_classes_excluded", label_key, "(all dialogues)", left_out,
                        f"{left_out} fru utterance(s) left out (classes=4); exc merged into hap")
    if any(len(v) == 0 for v in splits.values()):
        empty = [s for s, v in splits.items() if not v]
        raise DataError(f"{source}: split(s) {empty} have no dialogues")
    speakers_n = 2 if dataset == "iemocap" else max(
        9, 1 + max(u.speaker for s in splits.values() for d in s for u in d))
    if dataset == "meld" and layout in ("sdt-meld-13", "dialoguernn-meld-9"):
        card["note"] = "MELD train ids of these files likely include the official dev dialogues (docs/FORMATS.md §3c)"
    card["repairs"] = repairs.to_card()
    card["dims_provenance"] = {m: f"read from key {m!r} of the file" for m in dims}
    return BenchDataset(name=name or f"{dataset}-{layout}", spec=data_spec(dims, speakers_n), splits=splits, card=card)
