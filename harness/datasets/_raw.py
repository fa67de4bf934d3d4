"""Shared builder of the raw-media loaders: decode, extract (cached), assemble dialogues.

A loader turns its layout into :class:`RawRecord` rows; :func:`build_raw_dataset` decodes the
media with PyAV, runs the registered extractors (``text``/``audio``/``video`` options), caches
every feature tensor on disk (an :class:`~harness.extractors.cache.ExtractionCache`: the sweep's
when one is active, else the loader's ``cache_dir``) and returns the dataset.

Names read from index files (video and clip ids, utterance ids) become paths, so every media
path must resolve inside the dataset folder: a ``..`` name, an absolute name or a symlink that
leads out of the folder is refused with :class:`DataError` before anything is opened.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from harness.data.types import SPLITS, BenchDataset, DataSpec, Dialogue, MediaSource, RawMedia, Utterance
from harness.datasets.feature_cache import default_cache_dir, file_sha256
from harness.datasets.media import decode_audio, decode_frames
from harness.datasets.spec_only import spec_dataset, spec_only
from harness.datasets.validate import RepairLog, check_dims, to_features
from harness.errors import DataError
from harness.extractors.cache import ExtractionCache, ExtractionKey, active_cache
from harness.options import PositiveFloat
from harness.registry import EXTRACTORS

Missing = Literal["error", "skip"]
"""The raw loaders' ``missing`` option: refuse an utterance whose media file is absent, or leave
it out (counted in the card)."""
Fps = PositiveFloat
"""Frames per second that video is decoded at."""


@dataclass
class RawRecord:
    """One utterance of a raw layout. Spans are ``(start, end)`` seconds inside the media file."""

    uid: str
    dialogue_id: str
    split: str
    transcript: str
    label: int | None = None
    score: float | None = None
    speaker: int = 0
    speaker_name: str | None = None
    audio: Path | None = None
    audio_span: tuple[float, float] | None = None
    video: Path | None = None
    video_span: tuple[float, float] | None = None


def confine(path: str | Path, root: str | Path, source: str, what: str) -> Path:
    """``path`` itself if it resolves (symlinks followed) inside ``root``, else :class:`DataError`."""
    base = Path(root).resolve()
    resolved = Path(path).resolve()
    if resolved != base and base not in resolved.parents:
        raise DataError(f"{source}: {what}: path {str(path)!r} resolves to {str(resolved)!r}, outside the dataset "
                        f"folder {str(base)!r} (a '..' or absolute name, or a symlink leading out); refused")
    return Path(path)


def make_extractors(text: str | None, audio: str | None, video: str | None,
                    options: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for m, name in (("text", text), ("audio", audio), ("video", video)):
        if name in (None, "", "none"):
            continue
        ex = EXTRACTORS.create(name, **options.get(m, {}))
        if ex.modality != m:
            raise ValueError(f"extractor {name!r} is for {ex.modality!r}, not {m!r}")
        out[m] = ex
    if not out:
        raise ValueError("at least one of text, audio, video must name an extractor")
    return out


def build_raw_dataset(records: list[RawRecord], *, name: str, source: str, spec_kwargs: dict[str, Any],
                      card: dict[str, Any], extractors: dict[str, Any], cache_dir: str | None, keep_raw: bool,
                      fps: float, frame_size: int, max_frames: int, missing: str, repairs: RepairLog) -> BenchDataset:
    """The dataset of ``records``; asked for its spec only (:func:`spec_only`), the spec once
    every record's media is found, without decoding or extracting anything (the widths are
    the extractors')."""
    for r in records:
        for m, p in (("audio", r.audio), ("video", r.video)):
            if p is not None and m in extractors:
                confine(p, source, source, f"utterance {r.uid!r} ({m})")
    kept = []
    for r in records:
        absent = [str(p) for m, p in (("audio", r.audio), ("video", r.video))
                  if m in extractors and (p is None or not Path(p).is_file())]
        if absent:
            if missing == "error":
                raise DataError(f"{source}: utterance {r.uid!r}: media file(s) {absent} not found "
                                f"(pass missing='skip' to leave such utterances out, counted in the card)")
            repairs.add("missing_media_skipped", "media", r.uid, 1, f"left out: {absent} not found")
            continue
        kept.append(r)
    if spec_only():
        return spec_dataset(name, DataSpec(dims={m: ex.dim for m, ex in extractors.items()}, **spec_kwargs), card)
    cache = active_cache() or ExtractionCache(cache_dir if cache_dir is not None else default_cache_dir())
    hits0, misses0 = cache.hits, cache.misses
    configs = {m: ex.config() for m, ex in extractors.items()}
    clean_keys = {m: ExtractionKey.of(ex, "") for m, ex in extractors.items()}  # one digest per extractor
    sample_rate = int(getattr(extractors.get("audio"), "sample_rate", 16000))
    frames_by_uid: dict[str, Any] = {}

    def video_frames(r: RawRecord):  # noqa: ANN202 - decode each video file once for all its segments
        if r.uid not in frames_by_uid:
            group = [q for q in kept if q.video == r.video]
            spans = [q.video_span or (0.0, float("inf")) for q in group]
            for q, fr in zip(group, decode_frames(r.video, fps=fps, size=frame_size, max_frames=max_frames,
                                                  segments=spans)):
                frames_by_uid[q.uid] = fr
        return frames_by_uid[r.uid]

    def decode(r: RawRecord, m: str, raw: RawMedia) -> None:
        if m == "audio" and raw.waveform is None:
            s, e = r.audio_span if r.audio_span else (None, None)
            raw.waveform, raw.sample_rate = decode_audio(r.audio, sample_rate, s, e), sample_rate
        elif m == "video" and raw.frames is None:
            raw.frames, raw.fps = video_frames(r), fps

    def extract(r: RawRecord, m: str, raw: RawMedia) -> tuple[Any, dict[str, int]]:
        decode(r, m, raw)
        x = extractors[m].extract([raw])[0]
        return x, (extractors[m].item_stats() or [{}])[0]

    dims: dict[str, int] = {}
    counted: dict[str, Counter[str]] = {m: Counter() for m in extractors}  # e.g. frames without a face
    by_split: dict[str, dict[str, list[Utterance]]] = {s: {} for s in SPLITS}
    for r in kept:
        if r.split not in by_split:
            raise DataError(f"{source}: utterance {r.uid!r} has split {r.split!r}; expected one of {SPLITS}")
        raw = RawMedia(transcript=r.transcript, source=MediaSource(
            audio=str(r.audio) if "audio" in extractors and r.audio is not None else None, audio_span=r.audio_span,
            sample_rate=sample_rate, video=str(r.video) if "video" in extractors and r.video is not None else None,
            video_span=r.video_span, fps=fps, frame_size=frame_size, max_frames=max_frames))
        feats, item_stats = {}, {}
        for m in extractors:
            if m == "text":
                key = "text:" + hashlib.sha256(r.transcript.encode("utf-8")).hexdigest()
            else:
                path = r.audio if m == "audio" else r.video
                span = r.audio_span if m == "audio" else r.video_span
                settings = {"sr": sample_rate} if m == "audio" else {"fps": fps, "size": frame_size, "max": max_frames}
                key = f"{m}:{file_sha256(path)}:{span}:{sorted(settings.items())}"
            if keep_raw:
                decode(r, m, raw)
            got = cache.get_or_extract(replace(clean_keys[m], utterance=key), lambda r=r, m=m, raw=raw: extract(r, m, raw))
            counted[m].update(got.stats)
            if got.stats:
                item_stats[m] = dict(got.stats)
            feats[m] = to_features(got.features, source=source, key=m, uid=r.uid, repairs=repairs)
            check_dims(dims, m, feats[m], source, m, r.uid)
        utt = Utterance(uid=r.uid, dialogue_id=r.dialogue_id, position=0, speaker=r.speaker, features=feats,
                        label=r.label, score=r.score, raw=raw if keep_raw else None, speaker_name=r.speaker_name,
                        extraction_stats=item_stats)
        by_split[r.split].setdefault(r.dialogue_id, []).append(utt)
    splits = {}
    for s, groups in by_split.items():
        splits[s] = []
        for did, utts in groups.items():
            for i, u in enumerate(utts):
                u.position = i
            splits[s].append(Dialogue(did, utts))
    card = {**card, "extractors": configs, "feature_cache": {"dir": str(cache.root), "hits": cache.hits - hits0,
                                                             "misses": cache.misses - misses0},
            "extraction_stats": {m: dict(c) for m, c in counted.items() if c},
            "repairs": repairs.to_card(), "dims_provenance": {m: f"extractor {configs[m]['name']}" for m in dims}}
    spec = DataSpec(dims=dims, **spec_kwargs)
    return BenchDataset(name=name, spec=spec, splits=splits, card=card)


def empty_split_check(records: list[RawRecord], source: str) -> None:
    present = {r.split for r in records}
    missing = [s for s in SPLITS if s not in present]
    if missing:
        raise DataError(f"{source}: no utterances for split(s) {missing}")
