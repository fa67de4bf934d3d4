"""The MCER benchmark runs end to end at a toy size: the CPU floors and, where CUDA is present,
the GPU table (skipped with "CUDA not available" elsewhere)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_mcer.py"


def _run(tmp_path, *args):
    res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--repeats", "1", "--length", "6", *args],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.mark.slow
def test_cpu_bench_prints_the_floors(tmp_path):
    out = _run(tmp_path, "--variants", "mcer-reference+malloc+recompute,gat", "--batch", "1", "--threads", "1")
    assert "x FLOP" in out and "x state" in out
    rows = {r["variant"]: r for r in csv.DictReader(open(tmp_path / "mcer.csv"))}
    ref = rows["mcer-reference+malloc+recompute"]
    assert int(ref["params"]) == 45_632_150
    assert float(ref["step_gflop"]) > 0 and float(ref["matmul_gflops"]) > 0
    assert float(ref["x_flop_floor"]) > 1.0  # a step cannot beat its own matmul floor
    assert float(ref["x_state_floor"]) >= 1.0
    assert float(rows["gat"]["train_step_s"]) > 0


def test_bench_refuses_bad_arguments(tmp_path):
    res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--dtypes", "fp8"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode != 0 and "--dtypes" in res.stderr
    for bad in ("mcer", "mcer-reference+fast"):
        res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--variants", bad],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert res.returncode != 0 and f"unknown ['{bad}']" in res.stderr


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_bench_table(tmp_path):
    out = _run(tmp_path, "--device", "cuda", "--batches", "2", "--dtypes", "fp32,bf16")
    rows = list(csv.DictReader(open(tmp_path / "mcer_cuda.csv")))
    assert {(r["variant"], r["dtype"]) for r in rows} >= {("mcer-reference", "fp32"), ("mcer-reference", "bf16"),
                                                         ("naive", "bf16")}
    assert all(float(r["peak_cuda_mib"]) > 0 for r in rows)
    assert "vs fp32" in out
