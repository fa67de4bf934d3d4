"""IEMOCAP release layout (``IEMOCAP_full_release/Session{1..5}/...``): docs/FORMATS.md §4.

Labels and times from ``dialog/EmoEvaluation/<dialog>.txt`` (only lines ``[start - end]\\tutt\\temo\\t[V, A, D]``),
text from ``dialog/transcriptions/<dialog>.txt``, audio from ``sentences/wav/<dialog>/<utt>.wav``,
video (optional) cut from ``dialog/avi/DivX/<dialog>.avi`` by the utterance times. Session
``test_session`` is the test split; a seeded share of the other dialogues is held out as valid.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from harness.data.types import BenchDataset
from harness.datasets._raw import Fps, Missing, RawRecord, build_raw_dataset, empty_split_check, make_extractors
from harness.datasets.validate import HeldOutFraction, RepairLog, held_out_valid
from harness.errors import DataError
from harness.options import DataPath, PositiveInt, Range
from harness.registry import DATASETS

CLASSES_6 = ("hap", "sad", "neu", "ang", "exc", "fru")
CLASSES_4 = ("hap", "sad", "neu", "ang")  # exc merged into hap
EVAL_LINE = re.compile(r"^\[(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\]\s+(\S+)\s+(\S+)\s+\[")
TRANSCRIPT_LINE = re.compile(r"^(\S+)\s+\[[^\]]*\]:\s?(.*)$")
UTT_SPEAKER = re.compile(r"_([FM])\d+$")


def parse_evaluation(path: Path) -> list[tuple[str, float, float, str]]:
    """``(utt_id, start, end, emotion)`` of every utterance line; header and annotator lines are skipped."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = EVAL_LINE.match(line.strip())
        if m:
            out.append((m.group(3), float(m.group(1)), float(m.group(2)), m.group(4)))
    return out


def parse_transcriptions(path: Path) -> dict[str, str]:
    out = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            m = TRANSCRIPT_LINE.match(line.strip())
            if m:
                out[m.group(1)] = m.group(2).strip()
    return out


@DATASETS.register("raw-iemocap", task="classification", raw_media=True, source="IEMOCAP_full_release")
def raw_iemocap(path: DataPath, classes: Literal[4, 6] = 6, test_session: Annotated[int, Range(1, 5)] = 5,
                valid_fraction: HeldOutFraction = 0.1, seed: int = 0,
                text: str | None = "hash-embed", audio: str | None = "logmel", video: str | None = None,
                text_options: dict | None = None, audio_options: dict | None = None,
                video_options: dict | None = None, cache_dir: str | None = None, keep_raw: bool = False,
                fps: Fps = 10.0, frame_size: PositiveInt = 64, max_frames: PositiveInt = 64, missing: Missing = "error",
                name: str | None = None) -> BenchDataset:
    """IEMOCAP from the release folders; ``classes`` 6 (hap sad neu ang exc fru) or 4 (exc -> hap).

    Utterances with other labels (xxx, oth, fea, sur, dis) are left out and counted in the card.
    ``video="frame-stats"`` cuts the dialog ``.avi`` by the utterance times.
    """
    root = Path(path)
    sessions = sorted(root.glob("Session[0-9]*"))
    if not sessions:
        raise DataError(f"{root}: no Session<N> folders (expected IEMOCAP_full_release/Session1..5)")
    names = CLASSES_6 if classes == 6 else CLASSES_4
    index = {c: i for i, c in enumerate(names)}
    if classes == 4:
        index["exc"] = index["hap"]
    repairs = RepairLog(str(root))
    by_dialog: dict[str, list[RawRecord]] = {}
    dialog_session: dict[str, int] = {}
    for sess in sessions:
        n = int(re.sub(r"\D", "", sess.name) or 0)
        for ev in sorted((sess / "dialog" / "EmoEvaluation").glob("*.txt")):
            dialog = ev.stem
            trans = parse_transcriptions(sess / "dialog" / "transcriptions" / f"{dialog}.txt")
            rows = sorted(parse_evaluation(ev), key=lambda r: r[1])
            if not rows:
                raise DataError(f"{ev}: no utterance lines ('[start - end]\\tutt_id\\temotion\\t[V, A, D]')")
            recs = []
            for uid, start, end, emo in rows:
                if emo not in index:
                    repairs.add("label_outside_classes_excluded", ev.name, uid, 1, f"emotion {emo!r} not in {names}")
                    continue
                if uid not in trans:
                    raise DataError(f"{ev}: utterance {uid!r} has no line in transcriptions/{dialog}.txt")
                m = UTT_SPEAKER.search(uid)
                spk = m.group(1) if m else "?"
                recs.append(RawRecord(uid=uid, dialogue_id=dialog, split="test" if n == test_session else "train",
                                      transcript=trans[uid], label=index[emo], speaker=0 if spk == "M" else 1,
                                      speaker_name=spk, audio=sess / "sentences" / "wav" / dialog / f"{uid}.wav",
                                      video=sess / "dialog" / "avi" / "DivX" / f"{dialog}.avi",
                                      video_span=(start, end)))
            if recs:
                by_dialog[dialog] = recs
                dialog_session[dialog] = n
    train = [d for d in by_dialog if dialog_session[d] != test_session]
    train_ids, valid_ids, note = held_out_valid(train, valid_fraction, seed)
    for d in valid_ids:
        for r in by_dialog[d]:
            r.split = "valid"
    records = [r for recs in by_dialog.values() for r in recs]
    empty_split_check(records, str(root))
    extractors = make_extractors(text, audio, video, {"text": text_options or {}, "audio": audio_options or {},
                                                      "video": video_options or {}})
    card: dict[str, Any] = {"source": str(root), "format": "raw-iemocap", "classes": list(names),
                            "test": f"Session{test_session}", "validation": note.replace("the file ships", "IEMOCAP ships")}
    spec_kwargs = {"task": "classification", "num_classes": len(names), "class_names": names, "num_speakers": 2}
    return build_raw_dataset(records, name=name or "raw-iemocap", source=str(root), spec_kwargs=spec_kwargs, card=card,
                             extractors=extractors, cache_dir=cache_dir, keep_raw=keep_raw, fps=fps,
                             frame_size=frame_size, max_frames=max_frames, missing=missing, repairs=repairs)
