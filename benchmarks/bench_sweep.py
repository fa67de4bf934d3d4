"""Overhead of evaluating a trained model over a grid of corruption cells (feature path).

Compares, in one run, C clean test-set evaluations against the evaluation of C corrupted
cells (each cell = build the corrupted test set + evaluate), as the sweep runner does it.
Goal (issue 7): ratio <= 1.5. Prints a table and writes bench-results/sweep_overhead.csv.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import torch

from harness import CORRUPTIONS, DATASETS, MODELS
from harness.runtime import seed_everything
from harness.train import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench-results")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="early-fusion")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ds = DATASETS.create("synthetic", keep_raw=False)
    seed_everything(0)
    model = MODELS.create(args.model, ds.spec)
    test = ds.splits["test"]
    grid = [(m, s) for m in ("audio", "video", "text") for s in range(1, 6)]
    c = len(grid)
    evaluate(model, test, ds.spec, "cpu")  # warm-up
    clean_times, grid_times = [], []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        for _ in grid:
            evaluate(model, test, ds.spec, "cpu")
        clean_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for modality, severity in grid:
            corrupted = CORRUPTIONS.create("feature-gaussian", modality=modality)(test, severity, seed=r)
            evaluate(model, corrupted, ds.spec, "cpu")
        grid_times.append(time.perf_counter() - t0)
    clean, corrupted = statistics.median(clean_times), statistics.median(grid_times)
    ratio = corrupted / clean
    rows = [{"model": args.model, "cells": c, "utterances": sum(len(d) for d in test),
             "clean_evals_s": round(clean, 4), "corrupted_cells_s": round(corrupted, 4), "ratio": round(ratio, 3),
             "goal": "<= 1.5", "repeats": args.repeats}]
    print(f"{'model':<14}{'cells':>6}{'clean x C (s)':>16}{'grid (s)':>12}{'ratio':>8}")
    for row in rows:
        print(f"{row['model']:<14}{row['cells']:>6}{row['clean_evals_s']:>16}{row['corrupted_cells_s']:>12}{row['ratio']:>8}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "sweep_overhead.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
