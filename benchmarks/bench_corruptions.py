"""Corruption throughput: batched raw-audio SNR noise vs audiomentations, clip-level video
corruption vs a per-frame albumentations loop. Prints a table and writes ``corruptions.csv``.

    python benchmarks/bench_corruptions.py --out DIR [--device auto] [--utterances 256] [--repeats 3]

Audio: white noise at 10 dB SNR (severity 3 of ``audio-white``) over utterances of 1.0-3.0 s
at 16 kHz in 0.5 s steps (so the batched implementation sees realistic length groups), vs
``audiomentations.AddGaussianSNR(min_snr_db=10, max_snr_db=10, p=1)`` called per utterance.
Video: ``video-gaussian-blur`` severity 3 over 8-frame 112x112 clips (one transform per clip
through ``images=``), vs the same albumentations transform called frame by frame.
Best of ``--repeats`` runs each; throughput in seconds of media per second of wall time.
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import best_time  # noqa: E402

from harness import CORRUPTIONS  # noqa: E402
from harness.data.types import Dialogue, RawMedia, Utterance  # noqa: E402
from harness.runtime import describe_device, select_device  # noqa: E402

SR = 16000


def audio_data(n: int, rng: np.random.Generator) -> list[Dialogue]:
    utts = []
    for i in range(n):
        length = int(SR * (1.0 + 0.5 * (i % 5)))
        t = np.arange(length) / SR
        w = (0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.01 * rng.standard_normal(length)).astype(np.float32)
        utts.append(Utterance(f"b-{i:05d}", f"d{i // 8}", i % 8, 0, {}, raw=RawMedia(waveform=w, sample_rate=SR)))
    return [Dialogue(f"d{k}", utts[k * 8:(k + 1) * 8]) for k in range(-(-n // 8))]


def video_data(n: int, rng: np.random.Generator, size: int = 112, frames: int = 8) -> list[Dialogue]:
    utts = [Utterance(f"v-{i:05d}", f"d{i // 8}", i % 8, 0, {},
                      raw=RawMedia(frames=rng.integers(0, 256, size=(frames, size, size, 3), dtype=np.uint8), fps=10.0))
            for i in range(n)]
    return [Dialogue(f"d{k}", utts[k * 8:(k + 1) * 8]) for k in range(-(-n // 8))]


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output folder for corruptions.csv")
    p.add_argument("--device", default="auto")
    p.add_argument("--utterances", type=int, default=256)
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    device = select_device(args.device)
    rng = np.random.default_rng(0)
    rows = []

    # -- audio -------------------------------------------------------------------------
    import audiomentations

    dialogues = audio_data(args.utterances, rng)
    seconds = sum(len(u.raw.waveform) for d in dialogues for u in d) / SR
    ours = CORRUPTIONS.create("audio-white", extractor="none", device=str(device))
    ours(dialogues, 3, 0)  # warm-up
    t_ours = best_time(lambda: ours(dialogues, 3, 0), args.repeats)
    aug = audiomentations.AddGaussianSNR(min_snr_db=10.0, max_snr_db=10.0, p=1.0)
    waves = [u.raw.waveform for d in dialogues for u in d]
    t_ref = best_time(lambda: [aug(samples=w, sample_rate=SR) for w in waves], args.repeats)
    rows.append({"task": "audio SNR noise (10 dB white)", "ours": f"mcer-bench audio-white ({device.type})",
                 "reference": f"audiomentations {audiomentations.__version__} AddGaussianSNR per sample",
                 "media_seconds": round(seconds, 1), "ours_media_s_per_s": round(seconds / t_ours, 1),
                 "reference_media_s_per_s": round(seconds / t_ref, 1), "speedup": round(t_ref / t_ours, 2)})

    # -- video -------------------------------------------------------------------------
    import albumentations as A

    clips = video_data(args.clips, rng)
    vseconds = sum(len(u.raw.frames) / u.raw.fps for d in clips for u in d)
    vid = CORRUPTIONS.create("video-gaussian-blur", extractor="none")
    vid(clips, 3, 0)
    t_vid = best_time(lambda: vid(clips, 3, 0), args.repeats)
    sigma = vid.table[3]
    k = int(round(6 * sigma + 1)) | 1

    def per_frame():
        for d in clips:
            for u in d:
                tf = A.Compose([A.GaussianBlur(blur_limit=(k, k), sigma_limit=(sigma, sigma), p=1.0)], seed=0)
                np.stack([tf(image=f)["image"] for f in u.raw.frames])

    t_vref = best_time(per_frame, args.repeats)
    rows.append({"task": "video Gaussian blur (sigma 1.5, 8x112x112 clips)", "ours": "mcer-bench video-gaussian-blur",
                 "reference": f"albumentations {A.__version__} per-frame loop", "media_seconds": round(vseconds, 1),
                 "ours_media_s_per_s": round(vseconds / t_vid, 1), "reference_media_s_per_s": round(vseconds / t_vref, 1),
                 "speedup": round(t_vref / t_vid, 2)})

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "corruptions.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[*rows[0].keys(), "device", "machine"])
        w.writeheader()
        for r in rows:
            w.writerow({**r, "device": describe_device(device), "machine": platform.processor() or platform.machine()})
    cols = ["task", "media_seconds", "ours_media_s_per_s", "reference_media_s_per_s", "speedup"]
    widths = [max(len(str(r[c])) for r in rows + [dict(zip(cols, cols))]) for c in cols]
    print("  ".join(c.ljust(wd) for c, wd in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(wd) for c, wd in zip(cols, widths)))
    print(f"device: {describe_device(device)}; wrote {out / 'corruptions.csv'}")
    return rows


if __name__ == "__main__":
    main()
