"""MMSA processed pickles (MOSI / MOSEI aligned and unaligned, CH-SIMS): docs/FORMATS.md §1.

A split dict ``{'train','valid','test'}`` of parallel containers ``text (N,Lt,Dt)``,
``audio (N,La,Da)``, ``vision (N,Lv,Dv)``, ``id`` (``"<video>$_$<clip>"``) and labels. Each
utterance is trimmed to its real length: ``audio_lengths`` / ``vision_lengths`` when the file
has them (unaligned), the ``text_bert`` input mask for text, otherwise the trailing all-zero
rows are cut. The dialogue of an utterance is its source video. Dims come from the arrays.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from harness.data.types import SPLITS, BenchDataset, DataSpec, Dialogue, Task, Utterance
from harness.datasets.safe_pickle import safe_load, sha256_file
from harness.datasets.validate import (
    Nonfinite,
    RepairLog,
    check_dims,
    check_label,
    check_score,
    names_the_file,
    to_features,
)
from harness.errors import DataError
from harness.options import DataPath
from harness.registry import DATASETS

MODALITY_KEYS = {"text": "text", "audio": "audio", "video": "vision"}
MMSA_CLASSES = ("negative", "neutral", "positive")
ANNOTATIONS = {"negative": 0, "neutral": 1, "positive": 2}
UNIMODAL = {"T": "regression_labels_T", "A": "regression_labels_A", "V": "regression_labels_V"}


def trailing_length(x: np.ndarray) -> int:
    """Index after the last row of ``x`` (``[L, D]``) that is not all zero; at least 1."""
    nz = np.flatnonzero(np.any(x != 0, axis=1))
    return int(nz[-1]) + 1 if len(nz) else 1


def as_str(x: Any) -> str:
    if isinstance(x, bytes):
        return x.decode("utf-8", errors="replace")
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return as_str(x.item())
    return str(x)


def split_dict(obj: Any, source: str, split: str) -> dict:
    if not isinstance(obj, dict):
        raise DataError(f"{source}: expected a dict with splits 'train', 'valid', 'test', got {type(obj).__name__}")
    if split not in obj:
        hint = " (rename 'dev' to 'valid')" if split == "valid" and "dev" in obj else ""
        raise DataError(f"{source}: missing split {split!r}{hint}; the file has {sorted(map(str, obj))}")
    data = obj[split]
    if not isinstance(data, dict):
        raise DataError(f"{source}: split {split!r} is a {type(data).__name__}, expected a dict of arrays")
    return data


def require(data: dict, key: str, source: str, split: str) -> Any:
    if key not in data:
        raise DataError(f"{source}: split {split!r} has no key {key!r}; it has {sorted(map(str, data))}")
    return data[key]


def check_n(data: dict, keys: list[str], source: str, split: str) -> int:
    """Common sample count of ``keys``; ``DataError`` naming the mismatching key otherwise."""
    n_ref, ref = None, None
    for k in keys:
        n = len(data[k])
        if n_ref is None:
            n_ref, ref = n, k
        elif n != n_ref:
            raise DataError(f"{source}: split {split!r}: key {k!r} has {n} samples but {ref!r} has {n_ref}")
    if not n_ref:
        raise DataError(f"{source}: split {split!r} has no samples")
    return int(n_ref)


def seq_lengths(data: dict, key: str, n: int, max_len: int, source: str, split: str) -> np.ndarray:
    lengths = np.asarray(data[key]).reshape(-1)
    if len(lengths) != n:
        raise DataError(f"{source}: split {split!r}: key {key!r} has {len(lengths)} entries for {n} samples")
    bad = np.flatnonzero((lengths < 1) | (lengths > max_len))
    if len(bad):
        raise DataError(f"{source}: split {split!r}: key {key!r}[{int(bad[0])}] = {lengths[bad[0]]} outside 1..{max_len}")
    return lengths.astype(int)


def group_dialogues(utts: list[Utterance]) -> list[Dialogue]:
    """Group utterances by ``dialogue_id`` in order of first appearance, renumbering positions."""
    groups: dict[str, list[Utterance]] = {}
    for u in utts:
        groups.setdefault(u.dialogue_id, []).append(u)
    out = []
    for did, us in groups.items():
        for i, u in enumerate(us):
            u.position = i
        out.append(Dialogue(did, us))
    return out


@DATASETS.register("mmsa", task="regression|classification", source="thuiar/MMSA Processed/*.pkl")
def mmsa(path: DataPath, task: Task = "regression", label: Literal["M", "T", "A", "V"] = "M",
         nonfinite: Nonfinite = "error", name: str | None = None) -> BenchDataset:
    """MMSA processed pickle (MOSI/MOSEI aligned or unaligned, CH-SIMS).

    ``task``: ``"regression"`` (score in [-3, 3]; SIMS [-1, 1]) or ``"classification"``
    (negative / neutral / positive from ``classification_labels`` or ``annotations``).
    ``label``: ``"M"`` (multimodal) or, for SIMS, ``"T"``/``"A"``/``"V"`` unimodal targets.
    ``nonfinite``: ``"error"`` or ``"zero"`` for NaN/+inf (``-inf`` in audio always becomes 0).
    """
    obj = safe_load(path)
    return mmsa_from_object(obj, str(path), task=task, label=label, nonfinite=nonfinite, name=name,
                            sha256=sha256_file(path))


@names_the_file
def mmsa_from_object(obj: Any, source: str, task: str = "regression", label: str = "M", nonfinite: str = "error",
                     name: str | None = None, sha256: str | None = None) -> BenchDataset:
    """Build the dataset from an already (safely) unpickled MMSA dict; see :func:`mmsa` (whose
    declared options these are: callers check them, as ``DATASETS.create`` does)."""
    datas = {s: split_dict(obj, source, s) for s in SPLITS}
    sims = all(k in datas["train"] for k in UNIMODAL.values())
    if label != "M" and not sims:
        raise DataError(f"{source}: label={label!r} needs key {UNIMODAL[label]!r} (CH-SIMS unimodal labels)")
    lo, hi = (-1.0, 1.0) if sims else (-3.0, 3.0)
    aligned = "audio_lengths" not in datas["train"] and "vision_lengths" not in datas["train"]
    repairs = RepairLog(source)
    dims: dict[str, int] = {}
    splits: dict[str, list[Dialogue]] = {}
    for split, data in datas.items():
        keys = ["id", *MODALITY_KEYS.values()]
        if task == "regression":
            keys.append(UNIMODAL[label] if label != "M" else "regression_labels")
        else:
            keys.append("classification_labels" if "classification_labels" in data else "annotations")
        if sims:
            keys += list(UNIMODAL.values())
        for k in keys:
            require(data, k, source, split)
        n = check_n(data, keys, source, split)
        arrays = {m: np.asarray(data[k]) for m, k in MODALITY_KEYS.items()}
        for m, a in arrays.items():
            if a.ndim != 3:
                raise DataError(f"{source}: split {split!r}: key {MODALITY_KEYS[m]!r} has shape {a.shape}, expected (N, L, D)")
        lengths: dict[str, np.ndarray | None] = {"text": None, "audio": None, "video": None}
        for m, k in (("audio", "audio_lengths"), ("video", "vision_lengths")):
            if k in data:
                lengths[m] = seq_lengths(data, k, n, arrays[m].shape[1], source, split)
        if "text_bert" in data:
            tb = np.asarray(data["text_bert"])
            if tb.ndim != 3 or tb.shape[0] != n or tb.shape[1] != 3:
                raise DataError(f"{source}: split {split!r}: key 'text_bert' has shape {tb.shape}, expected (N, 3, L)")
            lengths["text"] = np.clip(tb[:, 1, :].sum(axis=1).astype(int), 1, arrays["text"].shape[1])
        ids = [as_str(x) for x in data["id"]]
        if sims:
            for k in UNIMODAL.values():
                if not isinstance(data[k], np.ndarray):
                    raise DataError(f"{source}: split {split!r}: key {k!r} must be a NumPy array (MMSA calls .astype), "
                                    f"got {type(data[k]).__name__}")
        utts = []
        for i in range(n):
            uid = ids[i]
            feats = {}
            for m, a in arrays.items():
                x = a[i]
                t = int(lengths[m][i]) if lengths[m] is not None else trailing_length(np.where(np.isneginf(x), 0.0, np.where(np.isfinite(x), x, 1.0)))
                feats[m] = to_features(x[:t], source=source, key=f"{split}/{MODALITY_KEYS[m]}", uid=uid,
                                       repairs=repairs, neg_inf_to_zero=True, nonfinite=nonfinite)
                check_dims(dims, m, feats[m], source, MODALITY_KEYS[m], uid)
            score, y = None, None
            if task == "regression":
                k = UNIMODAL[label] if label != "M" else "regression_labels"
                score = check_score(data[k][i], lo, hi, source, f"{split}/{k}", uid)
            elif "classification_labels" in data:
                y = check_label(data["classification_labels"][i], 3, source, f"{split}/classification_labels", uid)
            else:
                ann = as_str(data["annotations"][i]).strip().lower()
                if ann not in ANNOTATIONS:
                    raise DataError(f"{source}: key '{split}/annotations', utterance {uid!r}: annotation {ann!r} is not "
                                    f"one of Negative/Neutral/Positive")
                y = ANNOTATIONS[ann]
            did = uid.split("$_$", 1)[0] if "$_$" in uid else uid
            utts.append(Utterance(uid=uid, dialogue_id=did, position=0, speaker=0, features=feats, label=y,
                                  score=score))
        splits[split] = group_dialogues(utts)
    kind = "sims" if sims else ("aligned" if aligned else "unaligned")
    card = {"source": source, "format": "mmsa", "variant": kind, "task": task, "label": label, "sha256": sha256,
            "validation": "shipped in the file", "repairs": repairs.to_card(),
            "dims_provenance": {m: f"read from key {MODALITY_KEYS[m]!r} of the file" for m in dims},
            "dialogues": "an utterance's dialogue is its source video (id prefix before '$_$')",
            "lengths": "from audio_lengths/vision_lengths" if not aligned else "trailing zero rows trimmed"}
    spec = DataSpec(dims=dims, task=task, num_classes=3 if task == "classification" else None,  # type: ignore[arg-type]
                    class_names=MMSA_CLASSES if task == "classification" else None,
                    score_range=(lo, hi) if task == "regression" else None,
                    metric_set="sims" if sims and task == "regression" else "default")
    return BenchDataset(name=name or f"mmsa-{kind}", spec=spec, splits=splits, card=card)
