"""End-to-end deployment profile of a raw-media pipeline: decode -> corrupt -> extract -> model.

:func:`pipeline_profile` streams test utterances one at a time through the whole pipeline a
deployed system runs, and times each stage per utterance:

* ``decode`` -- the utterance's media decoded again from its files (PyAV, as the raw loader
  did: audio resampled to the extractor's rate, frames sampled and resized);
* ``corrupt`` -- the corruption applied to the decoded media (0 without one; a corruption
  that draws on other utterances sees this one only);
* ``extract`` -- every modality's extractor on the (corrupted) media, one utterance at a time;
* ``model`` -- the model's forward pass: an utterance-level model on the new utterance, a
  dialogue-level one on its dialogue so far (the earlier utterances' features as the dataset
  holds them), collation included.

It reports each stage's p50 and p95 latency (ms per utterance; ``stage_order`` lists the stages
in pipeline order) and those of their sum, the
real-time factor (processing time / audio duration per utterance: ``rtf`` its median, ``rtf_p95``
its 95th percentile; ``real_time`` when ``rtf_p95 < 1``, i.e. the pipeline keeps up with live
speech for 95% of utterances), and the peak memory during the loop (CUDA: the peak allocated
by PyTorch; CPU: the growth of the resident set size, a lower bound, see :mod:`harness.profile`).
The first utterance is run once untimed first (warm-up: lazy initialisation, caches).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from harness.data.collate import collate_dialogues, collate_utterances
from harness.data.types import BenchDataset, Dialogue, MediaSource, RawMedia, Utterance
from harness.extractors.base import Extractor
from harness.models import BenchModel
from harness.profile import _RssPeak, _sync
from harness.runtime import describe_device, select_device

STAGES = ("decode", "corrupt", "extract", "model")


def decode_source(source: MediaSource, transcript: str | None) -> RawMedia:
    """The media of ``source`` decoded as the raw loader decoded them."""
    from harness.datasets.media import decode_audio, decode_frames

    raw = RawMedia(transcript=transcript, source=source)
    if source.audio is not None:
        start, end = source.audio_span or (None, None)
        raw.waveform = decode_audio(source.audio, source.sample_rate or 16000, start, end)
        raw.sample_rate = source.sample_rate or 16000
    if source.video is not None:
        span = source.video_span or (0.0, float("inf"))
        raw.frames = decode_frames(source.video, fps=source.fps or 10.0, size=source.frame_size,
                                   max_frames=source.max_frames or 64, segments=[span])[0]
        raw.fps = source.fps
    return raw


def streamed_utterances(dataset: BenchDataset, n: int) -> list[tuple[Dialogue, int]]:
    """The first ``n`` test utterances whose media came from files, as ``(dialogue, index)``."""
    out = []
    for d in dataset.splits["test"]:
        for i, u in enumerate(d.utterances):
            if u.raw is not None and u.raw.source is not None and len(out) < n:
                out.append((d, i))
    return out


@torch.inference_mode()
def pipeline_profile(model: BenchModel, dataset: BenchDataset, extractors: Mapping[str, Extractor],
                     device: str | torch.device = "auto", corruption: Any = None, severity: int = 0, seed: int = 0,
                     n_utts: int = 20) -> dict[str, Any]:
    """Profile the pipeline (see the module doc) on up to ``n_utts`` test utterances of
    ``dataset`` (raw media kept, decoded from files). ``extractors``: modality -> extractor, as
    the dataset was extracted; ``corruption``: a raw-media corruption bound to the dataset (or
    None) applied at ``severity`` with corruption seed ``seed``. Latencies in ms, memory in MiB."""
    if n_utts < 1:
        raise ValueError(f"pipeline_profile: n_utts must be >= 1, got {n_utts!r}")
    items = streamed_utterances(dataset, n_utts)
    if not items:
        raise ValueError(f"dataset {dataset.name!r}: no test utterance keeps raw media decoded from files "
                         f"(load it with keep_raw = true through a raw-media loader)")
    device = select_device(device)
    model = model.eval().to(device)
    spec = dataset.spec

    def one(d: Dialogue, i: int) -> tuple[dict[str, float], float]:
        u = d.utterances[i]
        times = dict.fromkeys(STAGES, 0.0)
        t0 = time.perf_counter()
        raw = decode_source(u.raw.source, u.raw.transcript)  # type: ignore[union-attr]
        times["decode"] = time.perf_counter() - t0
        if corruption is not None and severity > 0:
            t0 = time.perf_counter()
            one_utt = [Utterance(u.uid, u.dialogue_id, 0, u.speaker, {}, raw=raw)]
            raw = corruption._corrupted_media([Dialogue(d.dialogue_id, one_utt)], one_utt, severity, seed)[0]
            times["corrupt"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        feats = {m: ex.extract([raw])[0] for m, ex in extractors.items()}
        times["extract"] = time.perf_counter() - t0
        new = u.with_features(feats)
        _sync(device)
        t0 = time.perf_counter()
        if model.level == "dialogue":
            batch = collate_dialogues([Dialogue(d.dialogue_id, [*d.utterances[:i], new])], spec, model.pooling)
        else:
            batch = collate_utterances([new], spec)
        model(batch.to(device))
        _sync(device)
        times["model"] = time.perf_counter() - t0
        return times, float(raw.duration_s or 0.0)

    one(*items[0])  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with _RssPeak() as sampler:
        measured = [one(d, i) for d, i in items]
    peak_mb = (torch.cuda.max_memory_allocated(device) if device.type == "cuda" else sampler.growth_bytes()) / 2**20
    ms = {s: np.array([t[s] for t, _ in measured]) * 1000.0 for s in STAGES}
    total = sum(ms.values())
    durations = np.array([dur for _, dur in measured])
    rtf = total / 1000.0 / np.where(durations > 0, durations, np.nan)

    def pct(x: np.ndarray) -> dict[str, float]:
        return {"p50_ms": float(np.percentile(x, 50)), "p95_ms": float(np.percentile(x, 95))}

    has_rtf = bool(np.isfinite(rtf).any())
    return {"stages": {s: pct(ms[s]) for s in STAGES}, "stage_order": list(STAGES), "total": pct(total),
            "rtf": float(np.nanpercentile(rtf, 50)) if has_rtf else None,
            "rtf_p95": float(np.nanpercentile(rtf, 95)) if has_rtf else None,
            "real_time": bool(np.nanpercentile(rtf, 95) < 1.0) if has_rtf else None,
            "mean_duration_s": float(durations.mean()), "peak_mem_mb": float(peak_mb),
            "peak_mem_method": "cuda_max_memory_allocated" if device.type == "cuda" else "cpu_rss_delta",
            "device": describe_device(device), "n_utterances": len(measured), "level": model.level}
