"""MMSA "Standard" raw layout (MOSI / MOSEI / CH-SIMS): ``label.csv`` + ``Raw/<video>/<clip>.mp4``.

Columns are read by name (their order differs between datasets); ids are strings (SIMS clip
ids are zero-padded). Audio and frames are decoded from the mp4 with PyAV and turned into
features by the registered extractors; features are cached on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from harness.data.types import BenchDataset, Task
from harness.datasets._raw import Fps, Missing, RawRecord, build_raw_dataset, empty_split_check, make_extractors
from harness.datasets.validate import RepairLog, check_score
from harness.errors import DataError
from harness.options import DataPath, PositiveInt
from harness.registry import DATASETS

MODES = {"train": "train", "valid": "valid", "validation": "valid", "dev": "valid", "test": "test"}
ANNOTATIONS = {"negative": 0, "neutral": 1, "positive": 2}
REQUIRED = ("video_id", "clip_id", "text", "label", "mode")


@DATASETS.register("raw-mmsa", task="regression|classification", raw_media=True,
                   source="MMSA label.csv + Raw/<video>/<clip>.mp4")
def raw_mmsa(path: DataPath, task: Task = "regression", label: Literal["M", "T", "A", "V"] = "M",
             text: str | None = "hash-embed", audio: str | None = "logmel", video: str | None = "frame-stats",
             text_options: dict | None = None, audio_options: dict | None = None, video_options: dict | None = None,
             cache_dir: str | None = None, keep_raw: bool = False, fps: Fps = 10.0, frame_size: PositiveInt = 64,
             max_frames: PositiveInt = 64, missing: Missing = "error", name: str | None = None) -> BenchDataset:
    """Raw MMSA dataset folder. ``label``: ``M`` or (SIMS) ``T``/``A``/``V``; ``task`` as in ``mmsa``."""
    import pandas as pd

    root = Path(path)
    csv = root / "label.csv"
    if not csv.is_file():
        raise DataError(f"{root}: no label.csv (expected <dataset_dir>/label.csv and Raw/<video_id>/<clip_id>.mp4)")
    df = pd.read_csv(csv, dtype={"clip_id": str, "video_id": str, "text": str}, encoding_errors="replace")
    absent = [c for c in REQUIRED if c not in df.columns]
    if absent:
        raise DataError(f"{csv}: missing column(s) {absent}; it has {list(df.columns)}")
    uni = [c for c in ("label_T", "label_A", "label_V") if c in df.columns]
    sims = len(uni) == 3 and not df[uni].isna().any().any()
    col = "label" if label == "M" else f"label_{label}"
    if label != "M" and not sims:
        raise DataError(f"{csv}: label={label!r} needs column {col!r} filled for every row (CH-SIMS)")
    lo, hi = (-1.0, 1.0) if sims else (-3.0, 3.0)
    repairs = RepairLog(str(csv))
    records = []
    for i, row in df.iterrows():
        vid, clip = str(row["video_id"]), str(row["clip_id"])
        uid = f"{vid}$_${clip}"
        mode = str(row["mode"]).strip().lower()
        if mode not in MODES:
            raise DataError(f"{csv}: row {i + 2}, utterance {uid!r}: mode {row['mode']!r} is not train/valid/test")
        score = check_score(row[col], lo, hi, str(csv), col, uid)
        y = None
        if task == "classification":
            ann = str(row.get("annotation", "")).strip().lower()
            if ann not in ANNOTATIONS:
                raise DataError(f"{csv}: row {i + 2}, utterance {uid!r}: annotation {row.get('annotation')!r} is not "
                                f"Negative/Neutral/Positive")
            y, score = ANNOTATIONS[ann], None
        media = root / "Raw" / vid / f"{clip}.mp4"
        text_value = row["text"] if isinstance(row["text"], str) else ""
        records.append(RawRecord(uid=uid, dialogue_id=vid, split=MODES[mode], transcript=text_value, label=y,
                                 score=score, audio=media, video=media))
    empty_split_check(records, str(csv))
    extractors = make_extractors(text, audio, video, {"text": text_options or {}, "audio": audio_options or {},
                                                      "video": video_options or {}})
    card: dict[str, Any] = {"source": str(root), "format": "raw-mmsa", "variant": "sims" if sims else "mosi/mosei",
                            "task": task, "label": label, "validation": "the 'mode' column of label.csv",
                            "dialogues": "an utterance's dialogue is its source video"}
    spec_kwargs = {"task": task, "num_classes": 3 if task == "classification" else None,
                   "class_names": ("negative", "neutral", "positive") if task == "classification" else None,
                   "score_range": (lo, hi) if task == "regression" else None,
                   "metric_set": "sims" if sims and task == "regression" else "default"}
    return build_raw_dataset(records, name=name or f"raw-mmsa-{root.name}", source=str(root), spec_kwargs=spec_kwargs,
                             card=card, extractors=extractors, cache_dir=cache_dir, keep_raw=keep_raw, fps=fps,
                             frame_size=frame_size, max_frames=max_frames, missing=missing, repairs=repairs)
