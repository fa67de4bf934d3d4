"""MELD raw layout: ``{train,dev,test}_sent_emo.csv`` + clips ``dia{D}_utt{U}.mp4`` (docs/FORMATS.md §4).

Clip folders are found by globbing the pattern (other files, e.g. macOS ``._`` files, are
ignored); a clip belongs to the split whose name (train / dev / test) appears in its folder
path, since dialogue numbers restart in every split. Speakers are numbered per dialogue in
order of first appearance (the party index dialogue models use).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from harness.data.types import BenchDataset
from harness.datasets._raw import (
    Fps,
    Missing,
    RawRecord,
    build_raw_dataset,
    confine,
    empty_split_check,
    make_extractors,
)
from harness.datasets.validate import RepairLog
from harness.errors import DataError
from harness.options import DataPath, PositiveInt
from harness.registry import DATASETS

EMOTIONS = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
SENTIMENTS = ("neutral", "positive", "negative")
CSVS = {"train": "train_sent_emo.csv", "valid": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
SPLIT_TOKENS = {"train": "train", "valid": "dev", "test": "test"}
CLIP = re.compile(r"^dia(\d+)_utt(\d+)\.mp4$")
REQUIRED = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")


def clip_index(root: Path) -> dict[tuple[str, int, int], Path]:
    """``(split, dialogue, utterance) -> clip path`` for every ``dia*_utt*.mp4`` under ``root``."""
    out = {}
    for p in root.rglob("*.mp4"):
        m = CLIP.match(p.name)
        if not m:
            continue
        rel = str(p.parent.relative_to(root)).lower()
        split = next((s for s, tok in SPLIT_TOKENS.items() if tok in rel), None)
        if split is not None:
            out[(split, int(m.group(1)), int(m.group(2)))] = p
    return out


@DATASETS.register("raw-meld", task="classification", raw_media=True, source="declare-lab/MELD CSVs + mp4 clips")
def raw_meld(path: DataPath, label: Literal["emotion", "sentiment"] = "emotion", text: str | None = "hash-embed",
             audio: str | None = "logmel", video: str | None = "frame-stats", text_options: dict | None = None,
             audio_options: dict | None = None, video_options: dict | None = None, cache_dir: str | None = None,
             keep_raw: bool = False, fps: Fps = 10.0, frame_size: PositiveInt = 64, max_frames: PositiveInt = 64,
             missing: Missing = "error", name: str | None = None) -> BenchDataset:
    """MELD from its CSVs and clips; ``label`` ``"emotion"`` (7 classes) or ``"sentiment"`` (3)."""
    import pandas as pd

    root = Path(path)
    names = EMOTIONS if label == "emotion" else SENTIMENTS
    column = "Emotion" if label == "emotion" else "Sentiment"
    clips = clip_index(root)
    repairs = RepairLog(str(root))
    records: list[RawRecord] = []
    max_speakers = 1
    for split, fname in CSVS.items():
        hits = sorted(root.rglob(fname))
        if not hits:
            raise DataError(f"{root}: missing {fname} (split {split!r})")
        csv = confine(hits[0], root, str(root), f"split {split!r} index")
        df = pd.read_csv(csv, encoding_errors="replace")
        absent = [c for c in REQUIRED if c not in df.columns]
        if absent:
            raise DataError(f"{csv}: missing column(s) {absent}; it has {list(df.columns)}")
        df = df.sort_values(["Dialogue_ID", "Utterance_ID"], kind="stable")
        for d, group in df.groupby("Dialogue_ID", sort=True):
            speakers: dict[str, int] = {}
            did = f"{SPLIT_TOKENS[split]}_dia{int(d)}"
            for _, row in group.iterrows():
                u = int(row["Utterance_ID"])
                uid = f"{did}_utt{u}"
                value = str(row[column]).strip().lower()
                if value not in names:
                    raise DataError(f"{csv}: utterance {uid!r}: {column} {row[column]!r} is not one of {names}")
                spk = str(row["Speaker"])
                speakers.setdefault(spk, len(speakers))
                clip = clips.get((split, int(d), u))
                records.append(RawRecord(uid=uid, dialogue_id=did, split=split, transcript=str(row["Utterance"]),
                                         label=names.index(value), speaker=speakers[spk], speaker_name=spk,
                                         audio=clip, video=clip))
            max_speakers = max(max_speakers, len(speakers))
    empty_split_check(records, str(root))
    extractors = make_extractors(text, audio, video, {"text": text_options or {}, "audio": audio_options or {},
                                                      "video": video_options or {}})
    card: dict[str, Any] = {"source": str(root), "format": "raw-meld", "label": label,
                            "validation": "the official dev split (dev_sent_emo.csv)",
                            "speakers": "numbered per dialogue in order of first appearance"}
    spec_kwargs = {"task": "classification", "num_classes": len(names), "class_names": names,
                   "num_speakers": max_speakers}
    return build_raw_dataset(records, name=name or "raw-meld", source=str(root), spec_kwargs=spec_kwargs, card=card,
                             extractors=extractors, cache_dir=cache_dir, keep_raw=keep_raw, fps=fps,
                             frame_size=frame_size, max_frames=max_frames, missing=missing, repairs=repairs)
