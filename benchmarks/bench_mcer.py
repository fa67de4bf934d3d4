"""Speed and peak memory of ``mcer-reference`` (IEMOCAP config) vs the released code's naive GAT.

Each variant runs in its own subprocess (so ``ru_maxrss`` is that variant's peak): a random
batch of B dialogues of N utterances at the IEMOCAP configuration (text 1024, audio 1582,
video 342, 6 classes, 2 speakers, H 512, 64 heads), one warm-up step, then ``--repeats``
timed training steps (forward + loss + backward + Adam step) and inference passes
(``torch.inference_mode``). The ``gat-*`` pair times the text graph stage alone (2 RGAT
blocks = 6 GAT layers, forward + backward). Reported: medians, the process's peak RSS, and the peak RSS
increase over the state just before the first step (model, optimiser and libraries excluded).

    python benchmarks/bench_mcer.py --out DIR [--repeats 3] [--batch 16] [--length 110]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = ("decomposed", "naive", "gat-decomposed", "gat-naive")
PAIRS = (("decomposed", "naive"), ("gat-decomposed", "gat-naive"))


def _rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(variant: str, repeats: int, batch: int, length: int, threads: int) -> dict:
    """Run one variant in this process; return its measurements."""
    sys.path[:0] = [str(HERE.parent), str(HERE)]
    import torch

    torch.set_num_threads(threads)
    from harness import MODELS
    from harness.data.collate import DialogueBatch
    from harness.data.types import DataSpec

    if variant.endswith("naive"):
        import _naive_gat

        _naive_gat.install()
    torch.manual_seed(0)
    spec = DataSpec(dims={"text": 1024, "audio": 1582, "video": 342}, num_classes=6, num_speakers=2)
    model = MODELS.create("mcer-reference", spec, preset="iemocap")
    if variant.startswith("gat-"):
        return _gat_only(model, variant, repeats, batch, length, threads)
    inputs = {m: torch.randn(batch, length, d) for m, d in spec.dims.items()}
    mask = torch.ones(batch, length, dtype=torch.bool)
    speakers = torch.randint(0, 2, (batch, length))
    labels = torch.randint(0, 6, (batch, length))
    data = DialogueBatch(inputs, mask, speakers, labels, None, [[""] * length] * batch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=5e-5)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = model.loss(model(data), data)
        loss.backward()
        opt.step()

    model.train()
    # Adam state is allocated at the first step: create it first so the baseline includes it.
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)
    base = _rss_mb()
    step()  # warm-up
    train = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        train.append(time.perf_counter() - t)
    model.eval()
    infer = []
    with torch.inference_mode():
        model(data)
        for _ in range(repeats):
            t = time.perf_counter()
            model(data)
            infer.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    return {"variant": variant, "params": model.num_parameters(), "train_step_s": statistics.median(train),
            "inference_s": statistics.median(infer), "peak_rss_mb": peak, "peak_increase_mb": peak - base,
            "batch": batch, "length": length, "threads": threads, "repeats": repeats}


def _gat_only(model, variant: str, repeats: int, batch: int, length: int, threads: int) -> dict:
    """The text graph stage alone (2 RGAT blocks, 6 GAT layers): forward + backward, no optimiser."""
    import torch

    graphs = model.graphs.train()
    x = torch.randn(batch, length, 512, requires_grad=True)
    speakers = torch.randint(0, 2, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.bool)
    base = _rss_mb()

    def step() -> None:
        graphs.zero_grad(set_to_none=True)
        graphs(x, speakers, mask).sum().backward()

    step()
    train = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        train.append(time.perf_counter() - t)
    infer = []
    graphs.eval()
    with torch.inference_mode():
        for _ in range(repeats):
            t = time.perf_counter()
            graphs(x, speakers, mask)
            infer.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": variant, "params": sum(p.numel() for p in graphs.parameters()),
            "train_step_s": statistics.median(train), "inference_s": statistics.median(infer), "peak_rss_mb": peak,
            "peak_increase_mb": peak - base, "batch": batch, "length": length, "threads": threads, "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-results", help="directory for mcer.csv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=110)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {VARIANTS}")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args, _unknown = parser.parse_known_args()  # nox passes the same posargs to every bench script
    if args.repeats < 1 or args.batch < 1 or args.length < 1:
        raise SystemExit(f"--repeats, --batch and --length must be >= 1, got {args.repeats}, {args.batch}, {args.length}")
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeats, args.batch, args.length, args.threads)))
        return
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in chosen if v not in VARIANTS]
    if bad:
        raise SystemExit(f"--variants: unknown {bad}; expected a comma list of {VARIANTS}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in chosen:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, "--repeats", str(args.repeats),
               "--batch", str(args.batch), "--length", str(args.length), "--threads", str(args.threads)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"variant {variant!r} failed (exit {res.returncode}):\n{res.stderr[-3000:]}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"  {variant}: done", file=sys.stderr)
    by = {r["variant"]: r for r in rows}
    for fast, slow in PAIRS:
        if fast not in by or slow not in by:
            continue
        n = by[slow]
        for r in (by[fast], n):
            r["train_speedup_vs_naive"] = n["train_step_s"] / r["train_step_s"]
            r["inference_speedup_vs_naive"] = n["inference_s"] / r["inference_s"]
            r["peak_rss_ratio_vs_naive"] = n["peak_rss_mb"] / r["peak_rss_mb"]
            r["peak_increase_ratio_vs_naive"] = n["peak_increase_mb"] / max(r["peak_increase_mb"], 1e-9)
    cols = list(rows[0])
    for r in rows:
        cols += [c for c in r if c not in cols]
    with open(out / "mcer.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    head = f"{'variant':<15} {'train s':>8} {'infer s':>8} {'peak MiB':>9} {'+peak MiB':>10} {'x train':>8} {'x peak':>7} {'x +peak':>8}"
    print("ratios: naive / this row, within each pair (full model; gat-* = the text graph stage alone)")
    print(f"mcer-reference IEMOCAP, B={args.batch} N={args.length}, {args.threads} threads, median of {args.repeats}")
    print(head)
    for r in rows:
        print(f"{r['variant']:<15} {r['train_step_s']:8.2f} {r['inference_s']:8.2f} {r['peak_rss_mb']:9.0f} "
              f"{r['peak_increase_mb']:10.0f} {r.get('train_speedup_vs_naive', float('nan')):8.2f} "
              f"{r.get('peak_rss_ratio_vs_naive', float('nan')):7.2f} {r.get('peak_increase_ratio_vs_naive', float('nan')):8.2f}")
    print(f"saved {out / 'mcer.csv'}")


if __name__ == "__main__":
    main()
