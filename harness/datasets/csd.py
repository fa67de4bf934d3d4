"""CMU-MultimodalSDK computational sequences (``.csd``, HDF5): docs/FORMATS.md §2.

A folder of ``.csd`` files is read with h5py (never the SDK, which downloads URLs). Feature
sequences are aligned to the words sequence with an average collapse (rows overlapping each
word interval, clipped; a word without any overlapping row gets zeros, like SDK ``impute``),
``b'sp'`` (silence) words are dropped with their rows, and the words are then grouped by the
label segments into utterances ``<video>[i]`` (the SDK's post-alignment key). Without a words
sequence the text sequence is the reference. Folds are video-id lists (option ``folds``);
without them a seeded share of videos is held out and the card says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.types import BenchDataset, DataSpec, Dialogue, RawMedia, Task, Utterance
from harness.datasets.validate import HeldOutFraction, Nonfinite, RepairLog, check_dims, check_score, to_features
from harness.errors import DataError
from harness.options import DataPath, NonNegativeInt
from harness.registry import DATASETS

ROLE_PATTERNS = {
    "words": ("timestampedwords",),
    "labels": ("labels",),
    "text": ("wordvectors", "glove"),
    "audio": ("covarep", "opensmile"),
    "video": ("facet", "openface"),
}
SILENCE = "sp"


class Sequence:
    """One computational sequence: ``entries[vid] = (features [n, d...], intervals [n, 2])``."""

    def __init__(self, path: Path) -> None:
        import h5py

        self.path = path
        self.name = path.stem
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise DataError(f"{path}: not a readable HDF5 .csd file (truncated or corrupt: {exc})") from exc
        with f:
            if not list(f.keys()):
                raise DataError(f"{path}: HDF5 file has no root group")
            root = f[list(f.keys())[0]]
            self.root = root.name.strip("/")
            if "data" not in root:
                raise DataError(f"{path}: root group {self.root!r} has no 'data' group")
            self.metadata: dict[str, Any] = {}
            for k, v in (root["metadata"].items() if "metadata" in root else []):
                raw = v[0] if v.shape else v[()]
                raw = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
                try:
                    self.metadata[k] = json.loads(raw)
                except ValueError:
                    self.metadata[k] = raw
            self.entries: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for vid, g in root["data"].items():
                for key in ("features", "intervals"):
                    if key not in g:
                        raise DataError(f"{path}: entry {vid!r} has no {key!r} dataset")
                feats, iv = g["features"][()], g["intervals"][()]
                if iv.ndim != 2 or iv.shape[1] != 2:
                    raise DataError(f"{path}: entry {vid!r}: intervals have shape {iv.shape}, expected (n, 2)")
                if feats.ndim < 2 or feats.shape[0] != iv.shape[0]:
                    raise DataError(f"{path}: entry {vid!r}: features shape {feats.shape} does not match intervals "
                                    f"shape {iv.shape} (need ndim >= 2 and equal first dims)")
                self.entries[str(vid)] = (feats, iv.astype(np.float64))


def sequence_role(name: str) -> str | None:
    """The role (``words``, ``labels``, ``text``, ``audio``, ``video``) a sequence's file name
    suggests, by the patterns the ``csd`` loader matches; ``None`` when none fits."""
    low = name.lower()
    for role, patterns in ROLE_PATTERNS.items():
        if any(p in low for p in patterns):
            if role == "words" and "vector" in low:
                continue
            if role == "labels" and "label" not in low:
                continue
            return role
    return None


def describe_sequence(path: str | Path) -> dict[str, Any]:
    """What one ``.csd`` file holds, without a labels file or any other sequence beside it.

    Returns its root name and metadata, the role its name suggests, the number of entries
    (videos), the feature shape per row (or the word vocabulary size for a words sequence),
    rows per entry, non-finite values, and how well the intervals cover each entry's time
    span: ``coverage`` is the union of an entry's intervals divided by its span (1.0 = no
    gaps), with the counts of entries that have gaps, overlapping rows, or degenerate
    intervals (end <= start).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"csd: file {str(path)!r} does not exist")
    seq = Sequence(path)
    if not seq.entries:
        raise DataError(f"{path}: root group {seq.root!r} has no entries under 'data'")
    shapes: dict[tuple[int, ...], int] = {}
    rows, coverage, spans = [], [], []
    nonfinite = degenerate = with_gaps = with_overlaps = 0
    words: set[str] = set()
    is_text = False
    for feats, iv in seq.entries.values():
        shape = tuple(int(d) for d in feats.shape[1:])
        shapes[shape] = shapes.get(shape, 0) + 1
        rows.append(len(iv))
        if feats.dtype.kind in "SUO":
            is_text = True
            words.update(w.decode("utf-8", "replace") if isinstance(w, bytes) else str(w) for w in feats.reshape(-1))
        else:
            nonfinite += int((~np.isfinite(feats.astype(np.float64))).sum())
        if not len(iv):
            continue
        degenerate += int((iv[:, 1] <= iv[:, 0]).sum())
        start, end = float(iv[:, 0].min()), float(iv[:, 1].max())
        order = np.argsort(iv[:, 0], kind="stable")
        s_, e_ = iv[order, 0], iv[order, 1]
        overlaps = bool(np.any(s_[1:] < np.maximum.accumulate(e_)[:-1] - 1e-9))
        covered, cur_s, cur_e = 0.0, s_[0], e_[0]
        for a, b in zip(s_[1:], e_[1:]):
            if a > cur_e:
                covered += max(0.0, cur_e - cur_s)
                cur_s, cur_e = a, b
            else:
                cur_e = max(cur_e, b)
        covered += max(0.0, cur_e - cur_s)
        span = end - start
        frac = covered / span if span > 0 else 1.0
        coverage.append(float(frac))
        spans.append(span)
        with_gaps += int(frac < 0.999)
        with_overlaps += int(overlaps)
    out: dict[str, Any] = {
        "format": "csd-sequence", "source": str(path), "name": seq.name, "root": seq.root,
        "role": sequence_role(seq.name), "metadata": seq.metadata, "entries": len(seq.entries),
        "features": ({"kind": "words", "vocabulary": len(words)} if is_text else
                     {"kind": "numeric", "row_shapes": {str(list(k)): n for k, n in shapes.items()},
                      "dim": int(np.prod(next(iter(shapes)))) if len(shapes) == 1 else None,
                      "nonfinite_values": nonfinite}),
        "rows_per_entry": _stats(rows),
        "intervals": {"span_seconds": _stats(spans), "coverage": _stats(coverage), "entries_with_gaps": with_gaps,
                      "entries_with_overlapping_rows": with_overlaps, "degenerate_intervals": degenerate},
        "note": ("a single computational sequence: it has no labels, so it is not a dataset on its own; the csd "
                 "loader aligns it with the other sequences of its folder"),
    }
    return out


def _stats(values: list[float] | list[int]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values, dtype=np.float64)
    return {"min": float(arr.min()), "mean": float(arr.mean()), "max": float(arr.max())}


def average_collapse(ref: np.ndarray, feats: np.ndarray, iv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the rows of ``feats`` overlapping each interval of ``ref`` (``[n, 2]`` s);
    returns ``([n, D]`` float32, bool ``[n]`` True where no row overlapped (zeros then)).

    Rows overlap ``[s, e]`` when ``start < e`` and ``end > s``. With sorted starts and ends (the
    usual case) the rows are found by binary search and averaged from cumulative sums;
    otherwise every row is tested.
    """
    flat = feats.reshape(len(feats), -1).astype(np.float64)
    if len(iv) > 1 and np.all(np.diff(iv[:, 0]) >= 0) and np.all(np.diff(iv[:, 1]) >= 0):
        lo = np.searchsorted(iv[:, 1], ref[:, 0], side="right")  # first row ending after s
        hi = np.searchsorted(iv[:, 0], ref[:, 1], side="left")  # rows starting before e
        csum = np.vstack([np.zeros((1, flat.shape[1])), np.cumsum(flat, axis=0)])
        count = np.maximum(hi - lo, 0)
        empty = count == 0
        out = (csum[np.maximum(hi, lo)] - csum[lo]) / np.maximum(count, 1)[:, None]
        return out.astype(np.float32), empty
    out = np.zeros((len(ref), flat.shape[1]), dtype=np.float32)
    empty = np.zeros(len(ref), dtype=bool)
    for i, (s, e) in enumerate(ref):
        m = (np.minimum(iv[:, 1], e) - np.maximum(iv[:, 0], s)) > 0
        if m.any():
            out[i] = flat[m].mean(axis=0)
        else:
            empty[i] = True
    return out, empty


def _find(files: dict[str, Path], role: str, given: str | None, folder: Path) -> Path | None:
    if given is not None:
        key = given[:-4] if given.endswith(".csd") else given
        if key not in files:
            raise DataError(f"{folder}: no sequence {given!r} for {role!r}; found {sorted(files)}")
        return files[key]
    hits = [n for n in files if any(p in n.lower() for p in ROLE_PATTERNS[role])]
    if role == "labels":
        hits = [n for n in hits if "label" in n.lower()]
    if role == "words":
        hits = [n for n in hits if "vector" not in n.lower()]
    if len(hits) > 1:
        raise DataError(f"{folder}: several sequences could be {role!r}: {sorted(hits)}; choose one with option {role}=NAME")
    return files[hits[0]] if hits else None


def _folds(folds: Any, folder: Path) -> dict[str, list[str]] | None:
    if folds is None:
        return None
    if isinstance(folds, (str, Path)):
        try:
            folds = json.loads(Path(folds).read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"folds file {str(folds)!r} is not readable JSON ({exc})") from exc
    if not isinstance(folds, dict):
        raise DataError(f"folds must map 'train'/'valid'/'test' to video-id lists, got {type(folds).__name__}")
    for s in ("train", "valid", "test"):
        if s not in folds:
            raise DataError(f"folds: missing split {s!r}; it has {sorted(folds)}")
    return {s: [str(v) for v in folds[s]] for s in ("train", "valid", "test")}


@DATASETS.register("csd", task="regression|classification", source="CMU-MultimodalSDK .csd (HDF5)")
def csd(path: DataPath, text: str | None = None, audio: str | None = None, video: str | None = None,
        words: str | None = None, labels: str | None = None, folds: Any = None, task: Task = "regression",
        label_column: NonNegativeInt = 0, valid_fraction: HeldOutFraction = 0.1,
        test_fraction: HeldOutFraction = 0.2, seed: int = 0, nonfinite: Nonfinite = "error",
        name: str | None = None) -> BenchDataset:
    """A folder of ``.csd`` files aligned to words; one utterance per label segment.

    Sequences are found by name (``*TimestampedWords``, ``*Labels``, ``*WordVectors``,
    ``*COVAREP``/``*OpenSmile``, ``*Facet``/``*OpenFace``) or named with the options (file
    basename without ``.csd``). ``folds``: ``{"train": [video ids], "valid": [...], "test": [...]}``
    or a JSON file of it. ``task``: ``"regression"`` (label column ``label_column``, in [-3, 3])
    or ``"classification"`` (binary: negative < 0 <= non-negative).
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"csd: folder {str(folder)!r} does not exist")
    files = {p.stem: p for p in sorted(folder.glob("*.csd"))}
    if not files:
        raise DataError(f"{folder}: no .csd files")
    given = {"text": text, "audio": audio, "video": video, "words": words, "labels": labels}
    found = {r: _find(files, r, given[r], folder) for r in ROLE_PATTERNS}
    if found["labels"] is None:
        raise DataError(f"{folder}: no labels sequence (*Labels.csd); name it with option labels=NAME")
    mods = [m for m in ("text", "audio", "video") if found[m] is not None]
    if not mods and found["words"] is None:
        raise DataError(f"{folder}: no feature sequences found among {sorted(files)}")
    seqs = {r: Sequence(p) for r, p in found.items() if p is not None}
    repairs = RepairLog(str(folder))
    common = set.intersection(*(set(s.entries) for s in seqs.values()))
    for s in seqs.values():
        missing = sorted(set(s.entries) - common)
        if missing:
            repairs.add("video_missing_from_other_sequences", s.name, ",".join(missing[:5]), len(missing),
                        f"{len(missing)} video(s) of {s.name} absent from another sequence were left out (SDK unify)")
    ref_role = "words" if "words" in seqs else mods[0]
    text_from_words = "words" in seqs and "text" not in seqs
    if text_from_words:
        from harness.registry import EXTRACTORS

        hash_embed = EXTRACTORS.create("hash-embed", dim=64)
    dims: dict[str, int] = {}
    by_video: dict[str, list[Utterance]] = {}
    for vid in sorted(common):
        ref_feats, ref_iv = seqs[ref_role].entries[vid]
        keep = (ref_iv[:, 1] - ref_iv[:, 0]) >= 10e-6
        word_list: list[str] | None = None
        if "words" in seqs:
            word_list = [(w.reshape(-1)[0].decode("utf-8", "replace") if isinstance(w.reshape(-1)[0], bytes)
                          else str(w.reshape(-1)[0])) for w in ref_feats]
            keep &= np.array([w != SILENCE for w in word_list])
        ref_iv = ref_iv[keep]
        aligned = {}
        for m in mods:
            feats, iv = seqs[m].entries[vid]
            aligned[m], empty = average_collapse(ref_iv, feats, iv)
            if empty.any():
                repairs.add("word_without_rows_imputed", seqs[m].name, vid, int(empty.sum()),
                            "word interval(s) with no overlapping rows filled with zeros (SDK impute)")
        if word_list is not None:
            word_list = [w for w, k in zip(word_list, keep) if k]
        lab_feats, lab_iv = seqs["labels"].entries[vid]
        lab_flat = lab_feats.reshape(len(lab_feats), -1)
        if not 0 <= label_column < lab_flat.shape[1]:
            raise DataError(f"{seqs['labels'].path}: label_column {label_column} out of range for labels of width "
                            f"{lab_flat.shape[1]}")
        utts = []
        for j, (s, e) in enumerate(lab_iv):
            uid = f"{vid}[{j}]"
            rows = np.flatnonzero((np.minimum(ref_iv[:, 1], e) - np.maximum(ref_iv[:, 0], s)) > 0)
            feats_u = {}
            for m in mods:
                x = aligned[m][rows] if len(rows) else np.zeros((1, aligned[m].shape[1]), np.float32)
                feats_u[m] = to_features(x, source=str(seqs[m].path), key=f"{vid}/features", uid=uid,
                                         repairs=repairs, nonfinite=nonfinite)
                check_dims(dims, m, feats_u[m], str(seqs[m].path), "features", uid)
            transcript = " ".join(word_list[r] for r in rows) if word_list is not None else None
            if text_from_words:
                feats_u["text"] = hash_embed.extract([RawMedia(transcript=transcript or "")])[0]
                dims["text"] = hash_embed.dim
            if not len(rows):
                repairs.add("segment_without_words_imputed", seqs[ref_role].name, uid, 1,
                            "label segment overlaps no (non-silence) word: one zero row per modality")
            score = check_score(lab_flat[j, label_column], -3.0, 3.0, str(seqs["labels"].path), f"{vid}/features", uid)
            y = None
            if task == "classification":
                y, score = int(score >= 0), None
            utts.append(Utterance(uid=uid, dialogue_id=vid, position=j, speaker=0, features=feats_u, label=y,
                                  score=score, raw=RawMedia(transcript=transcript) if transcript is not None else None))
        if not utts:
            raise DataError(f"{seqs['labels'].path}: video {vid!r} has no label segments")
        by_video[vid] = utts
    card: dict[str, Any] = {"source": str(folder), "format": "csd", "task": task,
                            "sequences": {r: s.name for r, s in seqs.items()},
                            "roots": {r: s.root for r, s in seqs.items()},
                            "alignment": f"average collapse onto {seqs[ref_role].name} intervals"
                                         + (", b'sp' words dropped" if "words" in seqs else ""),
                            "dims_provenance": {m: f"features of {seqs[m].name}" for m in mods}}
    if text_from_words:
        card["dims_provenance"]["text"] = "hash-embed (dim 64) of the words, no word-vector sequence found"
    fold_map = _folds(folds, folder)
    if fold_map is not None:
        absent = {s: [v for v in vs if v not in by_video] for s, vs in fold_map.items()}
        outside = sorted(set(by_video) - {v for vs in fold_map.values() for v in vs})
        card["validation"] = "standard folds (video-id lists) given with option folds"
        card["folds_absent_videos"] = {s: len(v) for s, v in absent.items()}
        if outside:
            repairs.add("video_outside_folds", "folds", ",".join(outside[:5]), len(outside),
                        f"{len(outside)} video(s) in no fold were left out")
        split_vids = {s: [v for v in vs if v in by_video] for s, vs in fold_map.items()}
    else:
        vids = sorted(by_video)
        if len(vids) < 3:
            raise DataError(f"{folder}: {len(vids)} video(s) cannot be split three ways; pass folds=")
        perm = np.random.default_rng(seed).permutation(len(vids))
        n_test = max(1, int(round(test_fraction * len(vids))))
        n_valid = max(1, int(round(valid_fraction * len(vids))))
        split_vids = {"test": [vids[i] for i in sorted(perm[:n_test])],
                      "valid": [vids[i] for i in sorted(perm[n_test:n_test + n_valid])],
                      "train": [vids[i] for i in sorted(perm[n_test + n_valid:])]}
        card["validation"] = (f"no folds given: videos split by seed {seed} (valid_fraction={valid_fraction}, "
                              f"test_fraction={test_fraction}); pass folds= for the standard folds")
    for s, vs in split_vids.items():
        if not vs:
            raise DataError(f"{folder}: split {s!r} has no videos")
    card["repairs"] = repairs.to_card()
    card["metadata"] = {r: {k: v for k, v in s.metadata.items() if isinstance(v, (str, int, float))}
                        for r, s in seqs.items()}
    splits = {s: [Dialogue(v, by_video[v]) for v in vs] for s, vs in split_vids.items()}
    spec = DataSpec(dims={m: dims[m] for m in ("text", "audio", "video") if m in dims}, task=task,  # type: ignore[arg-type]
                    num_classes=2 if task == "classification" else None,
                    class_names=("negative", "non-negative") if task == "classification" else None,
                    score_range=(-3.0, 3.0) if task == "regression" else None)
    return BenchDataset(name=name or f"csd-{folder.name}", spec=spec, splits=splits, card=card)
