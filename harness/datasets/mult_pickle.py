"""MulT / CMU "processed_data" pickles: ``mosi_data(_noalign).pkl``, ``mosei_senti_data(_noalign).pkl``,
``iemocap_data(_noalign).pkl`` (docs/FORMATS.md §1, related variant).

Same split dict as MMSA with keys ``text``, ``audio``, ``vision``, ``labels``, ``id``.
``labels`` is ``(N, 1, 1)`` sentiment in [-3, 3] (MOSI/MOSEI) or ``(N, 4, 2)`` for IEMOCAP
(four emotions x absent/present: the class is the emotion marked present). Padding rows
(the CMU SDK pads on the left) are stripped from both ends.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from harness.data.types import SPLITS, BenchDataset, DataSpec, Dialogue, Utterance
from harness.datasets.mmsa import MODALITY_KEYS, as_str, check_n, group_dialogues, require, split_dict
from harness.datasets.safe_pickle import safe_load, sha256_file
from harness.datasets.validate import (
    Nonfinite,
    RepairLog,
    check_dims,
    check_score,
    names_the_file,
    to_features,
)
from harness.errors import DataError
from harness.options import DataPath
from harness.registry import DATASETS

MULT_IEMOCAP_CLASSES = ("neutral", "happy", "sad", "angry")


def _ids(raw: Any, n: int) -> list[tuple[str, str]]:
    """(uid, dialogue id) per sample; ids may be bytes, str, or rows of parts ``[video, clip, ...]``."""
    out = []
    for x in raw:
        if isinstance(x, np.ndarray) and x.ndim >= 1 and x.size > 1:
            parts = [as_str(p) for p in x.reshape(-1)]
            out.append(("$_$".join(parts[:2]), parts[0]))
        else:
            s = as_str(x)
            out.append((s, s.split("$_$", 1)[0] if "$_$" in s else s))
    uids = [u for u, _ in out]
    if len(set(uids)) != len(uids):  # e.g. ids that are only the video: make them unique by position
        out = [(f"{u}#{i}", d) for i, (u, d) in enumerate(out)]
    return out


@DATASETS.register("mult-pickle", task="regression|classification", source="yaohungt/Multimodal-Transformer data")
def mult_pickle(path: DataPath, task: Literal["auto", "regression", "classification"] = "auto",
                nonfinite: Nonfinite = "error", name: str | None = None) -> BenchDataset:
    """MulT-style ``*_data(_noalign).pkl``.

    ``task``: ``"auto"`` (regression for ``(N,1,1)`` labels, classification for ``(N,C,2)``),
    ``"regression"`` or ``"classification"`` (sentiment: negative < 0 <= positive for MOSI/MOSEI).
    """
    obj = safe_load(path)
    return mult_from_object(obj, str(path), task=task, nonfinite=nonfinite, name=name, sha256=sha256_file(path))


@names_the_file
def mult_from_object(obj: Any, source: str, task: str = "auto", nonfinite: str = "error", name: str | None = None,
                     sha256: str | None = None) -> BenchDataset:
    datas = {s: split_dict(obj, source, s) for s in SPLITS}
    lab0 = np.asarray(require(datas["train"], "labels", source, "train"))
    multiclass = lab0.ndim == 3 and lab0.shape[-1] == 2 and lab0.shape[1] > 1
    if task == "auto":
        task = "classification" if multiclass else "regression"
    if task == "regression" and multiclass:
        raise DataError(f"{source}: labels have shape {lab0.shape} (emotion classes); task='regression' needs (N, 1, 1)")
    repairs = RepairLog(source)
    dims: dict[str, int] = {}
    splits: dict[str, list[Dialogue]] = {}
    class_names = MULT_IEMOCAP_CLASSES[: lab0.shape[1]] if multiclass and lab0.shape[1] == 4 else (
        tuple(f"emotion{i}" for i in range(lab0.shape[1])) if multiclass else ("negative", "positive"))
    for split, data in datas.items():
        keys = ["id", "labels", *MODALITY_KEYS.values()]
        for k in keys:
            require(data, k, source, split)
        n = check_n(data, keys, source, split)
        labels = np.asarray(data["labels"])
        ids = _ids(data["id"], n)
        arrays = {m: np.asarray(data[k]) for m, k in MODALITY_KEYS.items()}
        utts = []
        for i in range(n):
            uid, did = ids[i]
            feats = {}
            for m, a in arrays.items():
                if a.ndim != 3:
                    raise DataError(f"{source}: split {split!r}: key {MODALITY_KEYS[m]!r} has shape {a.shape}, "
                                    f"expected (N, L, D)")
                x = a[i]
                rows = np.flatnonzero(np.any(np.where(np.isfinite(x), x, 1.0) != 0, axis=1))  # non-padding rows
                x = x[rows[0]: rows[-1] + 1] if len(rows) else x[:1]
                feats[m] = to_features(x, source=source, key=f"{split}/{MODALITY_KEYS[m]}", uid=uid, repairs=repairs,
                                       neg_inf_to_zero=True, nonfinite=nonfinite)
                check_dims(dims, m, feats[m], source, MODALITY_KEYS[m], uid)
            score, y = None, None
            if multiclass:
                present = np.flatnonzero(labels[i][:, 1] > labels[i][:, 0])
                if len(present) != 1:
                    raise DataError(f"{source}: key '{split}/labels', utterance {uid!r}: {len(present)} emotions marked "
                                    f"present, expected exactly 1")
                y = int(present[0])
            else:
                score = check_score(labels[i], -3.0, 3.0, source, f"{split}/labels", uid)
                if task == "classification":
                    y, score = int(score >= 0), None
            utts.append(Utterance(uid=uid, dialogue_id=did, position=0, speaker=0, features=feats, label=y,
                                  score=score))
        splits[split] = group_dialogues(utts)
    card = {"source": source, "format": "mult-pickle", "task": task, "sha256": sha256,
            "validation": "shipped in the file", "repairs": repairs.to_card(),
            "dims_provenance": {m: f"read from key {MODALITY_KEYS[m]!r} of the file" for m in dims},
            "lengths": "leading and trailing all-zero padding rows stripped"}
    if task == "classification" and not multiclass:
        card["classes"] = "binary sentiment: negative (< 0) vs non-negative (>= 0)"
    spec = DataSpec(dims=dims, task=task,  # type: ignore[arg-type]
                    num_classes=len(class_names) if task == "classification" else None,
                    class_names=tuple(class_names) if task == "classification" else None,
                    score_range=(-3.0, 3.0) if task == "regression" else None)
    return BenchDataset(name=name or "mult", spec=spec, splits=splits, card=card)
