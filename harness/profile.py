"""Deployment profile of a model: cost and streaming latency measured on random inputs.

:func:`deployment_profile` measures, on random inputs of the model's :class:`DataSpec`:

* ``params`` — parameter count; ``flops_per_utt`` — forward FLOPs per utterance
  (``harness.describe.flops_per_utterance``, torch's own counter).
* ``latency_ms_p50/p95/p99`` — streaming: utterance k is appended to a dialogue of k−1; a
  dialogue-level model re-runs on the whole prefix (k utterances), an utterance-level model
  on the new utterance only. Measured after warm-up, including collation, k = 1..n_utts_max,
  ``repeats`` times.
* ``throughput_utt_s`` — batch inference: ``n_utts_max`` utterances in one batch (one dialogue
  for dialogue-level models), utterances per second over ``repeats`` runs.
* ``peak_mem_mb`` — on CUDA ``torch.cuda.max_memory_allocated`` during the measurements
  (weights + activations, ``peak_mem_method = "cuda_max_memory_allocated"``); on the CPU the
  weight bytes plus the peak growth of the process resident set size (``/proc/self/statm``
  sampled every ~1 ms by a background thread, ``peak_mem_method = "cpu_weights+rss_delta"``),
  which misses allocations reused from memory the process already held, so it is a lower bound.
* ``rtf`` — real-time factor ``latency_p50 / utterance_duration_s`` (``rtf_p95`` with p95);
  < 1 keeps up with live speech. The duration is an argument, e.g. the mean duration of the
  synthetic data set (:func:`mean_utterance_duration`); ``None`` (no raw audio to take it
  from) leaves ``rtf``, ``rtf_p95`` and ``real_time`` as ``None``.
* ``real_time`` — ``rtf_p95 < 1``: 95% of streamed utterances are answered before the next
  one of the same length could have been spoken.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from harness.data.collate import collate_dialogues, collate_utterances
from harness.data.types import BenchDataset, DataSpec, Dialogue
from harness.describe import dummy_dialogue, flops_per_utterance
from harness.models import BenchModel
from harness.runtime import describe_device, select_device

FIELDS = ("model", "level", "device", "params", "flops_per_utt", "peak_mem_mb", "peak_mem_method",
          "latency_ms_p50", "latency_ms_p95", "latency_ms_p99", "throughput_utt_s", "rtf", "rtf_p95",
          "real_time", "utterance_duration_s", "n_utts_max", "frames", "repeats")


def mean_utterance_duration(dataset: BenchDataset, split: str = "test") -> float:
    """Mean audio duration in seconds of the utterances of ``split`` that keep their raw waveform."""
    durs = [len(u.raw.waveform) / u.raw.sample_rate for u in dataset.utterances(split)
            if u.raw is not None and u.raw.waveform is not None and u.raw.sample_rate]
    if not durs:
        raise ValueError(f"dataset {dataset.name!r} split {split!r} has no raw waveforms "
                         "(build it with keep_raw=True) to take durations from")
    return float(np.mean(durs))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class _RssPeak:
    """Background sampler of the resident set size; ``peak - baseline`` after ``stop``."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval = interval_s
        self.baseline = _rss_bytes()
        self.peak = self.baseline or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def _run(self) -> None:
        while not self._stop.is_set():
            v = _rss_bytes()
            if v is not None:
                self.peak = max(self.peak, v)
            time.sleep(self.interval)

    def __enter__(self) -> _RssPeak:
        if self.baseline is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def growth_bytes(self) -> int:
        if self.baseline is not None:
            return max(0, self.peak - self.baseline)
        # no /proc: ru_maxrss growth (kilobytes on Linux), 0 when the old high-water mark was higher
        return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self._maxrss0) * 1024


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


@torch.inference_mode()
def deployment_profile(model: BenchModel, spec: DataSpec, device: str | torch.device = "auto",
                       n_utts_max: int = 20, repeats: int = 3, warmup: int = 2, frames: int = 20,
                       utterance_duration_s: float | None = 1.0, seed: int = 0) -> dict[str, Any]:
    """Profile ``model`` (see the module docstring for every field); returns a dict with the keys
    of :data:`FIELDS`. Latencies in milliseconds, memory in MiB, throughput in utterances/s.

    ``n_utts_max``: longest streamed dialogue and the throughput batch size; ``frames``: frames per
    modality of each random utterance; ``utterance_duration_s``: audio seconds per utterance for
    the real-time factor.
    """
    if not isinstance(model, BenchModel):
        raise TypeError(f"deployment_profile: model must be a BenchModel, got {type(model).__name__}")
    for name, v, lo in (("n_utts_max", n_utts_max, 1), ("repeats", repeats, 1), ("warmup", warmup, 0),
                        ("frames", frames, 1)):
        if not isinstance(v, int) or v < lo:
            raise ValueError(f"deployment_profile: {name} must be an integer >= {lo}, got {v!r}")
    if utterance_duration_s is not None and not utterance_duration_s > 0:
        raise ValueError(f"deployment_profile: utterance_duration_s must be > 0 seconds, got {utterance_duration_s!r}")
    if model.level not in ("utterance", "dialogue"):
        raise ValueError(f"model {type(model).__name__} declares level {model.level!r}; expected 'utterance' or 'dialogue'")
    device = select_device(device)
    flops = flops_per_utterance(model, spec, n_utts=min(n_utts_max, 10), frames=frames)
    model = model.eval().to(device)
    dialogue = dummy_dialogue(spec, n_utts_max, frames, seed=seed)
    utts = dialogue.utterances

    def step(k: int) -> None:  # utterance k (1-based) arrives
        if model.level == "dialogue":
            batch = collate_dialogues([Dialogue(dialogue.dialogue_id, utts[:k])], spec, model.pooling)
        else:
            batch = collate_utterances([utts[k - 1]], spec)
        model(batch.to(device))

    def full_batch() -> None:
        batch = (collate_dialogues([dialogue], spec, model.pooling) if model.level == "dialogue"
                 else collate_utterances(utts, spec))
        model(batch.to(device))

    for _ in range(warmup):
        for k in range(1, n_utts_max + 1):
            step(k)
        full_batch()

    latencies = [_timed(lambda k=k: step(k), device) for _ in range(repeats) for k in range(1, n_utts_max + 1)]
    batch_times = [_timed(full_batch, device) for _ in range(repeats)]
    # Memory in a pass of its own: the CPU sampler thread would otherwise add jitter to the timings.
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sampler = _RssPeak() if device.type != "cuda" else None
    if sampler is not None:
        sampler.__enter__()
    try:
        for k in range(1, n_utts_max + 1):
            step(k)
        full_batch()
    finally:
        if sampler is not None:
            sampler.__exit__(None, None, None)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
        method = "cuda_max_memory_allocated"
    else:
        assert sampler is not None
        weights = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
        peak_mb = (weights + sampler.growth_bytes()) / 2**20
        method = "cpu_weights+rss_delta" if sampler.baseline is not None else "cpu_weights+maxrss_delta"
    lat_ms = np.asarray(latencies) * 1000.0
    p50, p95, p99 = (float(x) for x in np.percentile(lat_ms, [50, 95, 99]))
    return {
        "model": type(model).__name__, "level": model.level, "device": describe_device(device),
        "params": int(model.num_parameters()), "flops_per_utt": float(flops),
        "peak_mem_mb": float(peak_mb), "peak_mem_method": method,
        "latency_ms_p50": p50, "latency_ms_p95": p95, "latency_ms_p99": p99,
        "throughput_utt_s": float(n_utts_max / np.median(batch_times)),
        "rtf": None if utterance_duration_s is None else p50 / 1000.0 / utterance_duration_s,
        "rtf_p95": None if utterance_duration_s is None else p95 / 1000.0 / utterance_duration_s,
        "real_time": None if utterance_duration_s is None else bool(p95 / 1000.0 < utterance_duration_s),
        "utterance_duration_s": None if utterance_duration_s is None else float(utterance_duration_s),
        "n_utts_max": n_utts_max, "frames": frames,
        "repeats": repeats,
    }
