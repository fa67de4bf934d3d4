"""Decoding audio and video with PyAV (which ships its own FFmpeg; no system ffmpeg needed).

``decode_audio`` -> mono float32 ``[S]`` in [-1, 1] at ``sample_rate`` Hz; ``decode_frames`` ->
uint8 RGB ``[F, H, W, 3]`` sampled at ``fps`` (at most ``max_frames``), optionally for several
time segments of one file in a single pass (IEMOCAP dialog videos cut by utterance times).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.errors import DataError


def _open(path: str | Path):  # noqa: ANN202
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise DataError(f"{path}: cannot open media file ({exc})") from exc


def decode_audio(path: str | Path, sample_rate: int = 16000, start: float | None = None,
                 end: float | None = None) -> np.ndarray:
    """Mono float32 waveform ``[S]`` of the first audio stream, resampled to ``sample_rate``;
    optionally only the samples between ``start`` and ``end`` seconds."""
    import av

    with _open(path) as c:
        if not c.streams.audio:
            raise DataError(f"{path}: no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        try:
            for frame in c.decode(audio=0):
                for f in resampler.resample(frame):
                    chunks.append(f.to_ndarray().reshape(-1))
            for f in resampler.resample(None):
                chunks.append(f.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise DataError(f"{path}: audio decoding failed ({exc})") from exc
    wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if start is not None or end is not None:
        a = int(round((start or 0.0) * sample_rate))
        b = len(wave) if end is None else int(round(end * sample_rate))
        wave = wave[a:b]
    if len(wave) < 2:
        raise DataError(f"{path}: audio has {len(wave)} samples" + (f" in [{start}, {end}] s" if start is not None else ""))
    return np.clip(wave, -1.0, 1.0)


def decode_frames(path: str | Path, fps: float = 10.0, size: int | None = 64, max_frames: int = 64,
                  segments: Sequence[tuple[float, float]] | None = None) -> list[np.ndarray]:
    """RGB frames ``[F, H, W, 3]`` sampled every ``1/fps`` s, resized to ``size x size`` when given.

    ``segments``: ``(start, end)`` seconds; one frame array per segment (the whole file when
    ``None``). A segment without any frame gets the nearest earlier frame, or an error.
    """
    import av

    segs = list(segments) if segments is not None else [(0.0, float("inf"))]
    out: list[list[np.ndarray]] = [[] for _ in segs]
    next_t = [s for s, _ in segs]
    last = None
    with _open(path) as c:
        if not c.streams.video:
            raise DataError(f"{path}: no video stream")
        try:
            for frame in c.decode(video=0):
                t = float(frame.time or 0.0)
                img = None
                for k, (s, e) in enumerate(segs):
                    if s <= t < e and t + 1e-6 >= next_t[k] and len(out[k]) < max_frames:
                        if img is None:
                            img = (frame.to_ndarray(format="rgb24", width=size, height=size) if size
                                   else frame.to_ndarray(format="rgb24"))
                        out[k].append(img)
                        next_t[k] += 1.0 / fps
                if img is None and any(len(o) == 0 and t < s for o, (s, _) in zip(out, segs)):
                    last = frame.to_ndarray(format="rgb24", width=size, height=size) if size else frame.to_ndarray(
                        format="rgb24")
        except av.error.FFmpegError as exc:
            raise DataError(f"{path}: video decoding failed ({exc})") from exc
    result = []
    for k, frames in enumerate(out):
        if not frames:
            if last is None:
                raise DataError(f"{path}: no video frame in segment {segs[k]}")
            frames = [last]
        result.append(np.stack(frames))
    return result
