"""Extractor overhead and feature-cache speed-up. Prints a table and writes ``extractors.csv``.

    python benchmarks/bench_extractors.py --out DIR [--device auto] [--utterances 8] [--repeats 2]

1. ``audio-encoder`` over a base-size wav2vec 2.0 built here from its default configuration with
   random weights (95M parameters: the compute of the real model), on the fixture speech
   (``tests/fixtures/speech``), against the model's bare forward pass on the same inputs
   (feature extractor outputs prepared beforehand), both one utterance at a time, on the same
   thread count (one on the CPU, as extraction runs) and precision. Ratio goal: <= 1.2.
2. The same extraction through ``ExtractionCache`` (``extract_cached``): an empty cache, then
   the same keys again (every entry cached). Ratio goal: cached <= 5% of uncached.
3. The same through a real sweep (``run_sweep``, local executor): a raw IEMOCAP-layout folder
   (``harness.run.raw_demo``'s writer, ``--dialogues`` train and test dialogues) with the
   base-size encoder as its audio extractor and white noise at two severities; the time the
   sweep spends loading the dataset (clean extraction) and building its corrupted test sets,
   first with an empty feature cache, then in a second run directory sharing that cache (every
   feature cached). Ratio goal: cached <= 5% of uncached.

Best of ``--repeats`` runs each.
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _timing import best_time  # noqa: E402

from harness import EXTRACTORS  # noqa: E402
from harness.data.types import RawMedia  # noqa: E402
from harness.datasets.media import decode_audio  # noqa: E402
from harness.extractors.cache import ExtractionCache, ExtractionKey, extract_cached  # noqa: E402
from harness.extractors.random_models import save_audio_encoder  # noqa: E402
from harness.runtime import describe_device, machine_independent_threads, select_device  # noqa: E402

SR = 16000


class _ExtractionClock:
    """Time spent in :class:`DatasetCache`'s dataset loading and test-set building (where a
    sweep extracts features), over every call, nested calls counted once."""

    def __init__(self) -> None:
        self.seconds, self._depth = 0.0, 0

    def wrap(self, fn):  # noqa: ANN001, ANN202
        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            self._depth += 1
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - t
        return timed


def sweep_extraction(encoder: Path, tmp: Path, device: str, dialogues: int) -> tuple[float, float, int]:
    """Extraction seconds of the same sweep with an empty feature cache, then with every feature
    cached (a second run directory sharing the cache folder), and the extractions the first ran."""
    from harness.extractors.base import config_digest
    from harness.run import worker
    from harness.run.config import parse_config
    from harness.run.driver import run_sweep
    from harness.run.raw_demo import write_iemocap_layout

    data = write_iemocap_layout(tmp / "IEMOCAP_full_release", n_train=dialogues, n_test=dialogues)
    audio = {"path": str(encoder), "device": device}
    raw = {"run": {"name": "bench", "seeds": [0]}, "train": {"epochs": 1},
           "models": [{"name": "text-only", "options": {"hidden": 8}}],
           "datasets": [{"name": "raw-iemocap", "options": {"path": str(data), "classes": 4, "keep_raw": True,
                                                            "audio": "audio-encoder", "audio_options": audio}}],
           "corruptions": [{"name": "audio-white", "severities": [3, 5]}], "deployment": {"enabled": False},
           "feature_cache": {"dir": str(tmp / "sweep-cache")}}
    times = []
    for run in ("uncached", "cached"):
        clock = _ExtractionClock()
        original = worker.DatasetCache.dataset, worker.DatasetCache.test_set
        worker.DatasetCache.dataset, worker.DatasetCache.test_set = (clock.wrap(f) for f in original)
        try:
            run_sweep(parse_config(raw), tmp / run, raw_config=raw, progress=False, log=lambda *_: None)
        finally:
            worker.DatasetCache.dataset, worker.DatasetCache.test_set = original
        times.append(clock.seconds)
    digest = config_digest(EXTRACTORS.create("audio-encoder", **audio).config())
    extracted = sum(ExtractionCache(tmp / "sweep-cache").extraction_counts(digest).values())
    return times[0], times[1], extracted


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-results")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--utterances", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dialogues", type=int, default=3, help="train and test dialogues of the sweep (part 3)")
    args = parser.parse_args(argv)
    device = select_device(args.device)
    files = sorted((ROOT / "tests" / "fixtures" / "speech").glob("*.wav"))
    waves = [decode_audio(files[i % len(files)], SR) for i in range(args.utterances)]
    media = [RawMedia(waveform=w, sample_rate=SR) for w in waves]
    seconds = sum(len(w) for w in waves) / SR
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_audio_encoder(Path(tmp) / "wav2vec2-base", "wav2vec2", size="base")
        ex = EXTRACTORS.create("audio-encoder", path=str(folder), device=str(device))
        params = sum(p.numel() for p in ex._model.parameters())
        inputs = [ex._features(w, sampling_rate=SR, return_tensors="pt")["input_values"].to(device) for w in waves]

        @torch.inference_mode()
        def bare() -> None:
            with machine_independent_threads(device), ex._autocast():
                for x in inputs:
                    ex._model(x)

        ex.extract(media[:1])  # warm-up (kernels, allocator)
        t_bare = best_time(bare, args.repeats)
        t_extract = best_time(lambda: ex.extract(media), args.repeats)
        rows.append({"measure": "audio-encoder extract vs bare forward", "baseline_s": round(t_bare, 3),
                     "measured_s": round(t_extract, 3), "ratio": round(t_extract / t_bare, 3), "goal": "<= 1.2"})

        keys = [ExtractionKey.of(ex, f"utt{i}") for i in range(len(media))]
        uncached, cached = [], []
        for r in range(args.repeats):
            cache = ExtractionCache(Path(tmp) / f"cache{r}")
            t = time.perf_counter()
            extract_cached(ex, cache, keys, lambda i: media[i])
            uncached.append(time.perf_counter() - t)
            t = time.perf_counter()
            extract_cached(ex, cache, keys, lambda i: media[i])
            cached.append(time.perf_counter() - t)
        rows.append({"measure": "cached vs uncached extraction", "baseline_s": round(min(uncached), 3),
                     "measured_s": round(min(cached), 4), "ratio": round(min(cached) / min(uncached), 4),
                     "goal": "<= 0.05"})
        t_uncached, t_cached, n_extracted = sweep_extraction(folder, Path(tmp), str(device), args.dialogues)
        rows.append({"measure": f"sweep extraction, cached vs uncached ({n_extracted} extr.)",
                     "baseline_s": round(t_uncached, 3), "measured_s": round(t_cached, 4),
                     "ratio": round(t_cached / t_uncached, 4), "goal": "<= 0.05"})
    print(f"device: {describe_device(device)} ({platform.processor() or platform.machine()}); wav2vec2 base "
          f"{params / 1e6:.1f}M parameters, random weights; {len(media)} utterances, {seconds:.1f} s of speech; "
          f"best of {args.repeats}; both passes on {'1 CPU thread' if device.type == 'cpu' else 'the GPU'}")
    print(f"{'measure':52s} {'baseline s':>11s} {'measured s':>11s} {'ratio':>7s}  goal")
    for r in rows:
        print(f"{r['measure']:52s} {r['baseline_s']:11.3f} {r['measured_s']:11.4f} {r['ratio']:7.3f}  {r['goal']}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "extractors.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["device", *rows[0]])
        writer.writeheader()
        for r in rows:
            writer.writerow({"device": describe_device(device), **r})
    return rows


if __name__ == "__main__":
    main()
