"""Determinism policy, thread and worker sizing of harness.runtime, and the deterministic resampler.

The CUDA test trains twice with the same seed and needs bit-identical results; it runs only
where CUDA is present and is reported as skipped ("CUDA not available") elsewhere.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from harness import MODELS
from harness.resample import interpolation_matrix, linear_resample
from harness.run.worker import DatasetCache
from harness.runtime import (
    GPU_WORKERS_PER_DEVICE,
    allow_nondeterministic,
    configure_cpu_allocator,
    determinism_status,
    plan_workers,
    seed_everything,
    torch_threads,
)
from harness.train import TrainConfig, evaluate, fit

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


@pytest.fixture
def restore_determinism():
    on = torch.are_deterministic_algorithms_enabled()
    warn = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(on, warn_only=warn)


# -- determinism status -----------------------------------------------------------------------
def test_seed_everything_is_strict_and_status_follows_the_flags(restore_determinism):
    seed_everything(0)
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()
    assert determinism_status("cpu") is True
    assert determinism_status(torch.device("cuda")) is True  # the flags alone; no GPU needed to read them
    torch.use_deterministic_algorithms(True, warn_only=True)
    assert determinism_status("cuda") is False
    assert determinism_status("cpu") is True
    seed_everything(0)
    with allow_nondeterministic("upsample_linear1d_backward in a test"):
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()  # restored
    assert determinism_status("cuda") is False  # the block ran: results are marked
    seed_everything(1)
    assert determinism_status("cuda") is True  # a new seeding clears the mark


def test_determinism_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="reason"):
        with allow_nondeterministic(""):
            pass
    with pytest.raises(ValueError, match="seed"):
        seed_everything(True)


# -- threads and workers ----------------------------------------------------------------------
def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    with torch_threads(3):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="thread count"):
        with torch_threads(0):
            pass


def test_plan_workers_cpu_and_one_gpu():
    cpu = plan_workers("cpu", cores=16, cells=40)
    assert (cpu.workers, cpu.threads) == (16, 1)
    assert plan_workers("cpu", cores=16, cells=3).workers == 3
    gpu = plan_workers("cuda", cores=16, cells=40)
    assert gpu.workers == GPU_WORKERS_PER_DEVICE and gpu.threads == 16 // GPU_WORKERS_PER_DEVICE
    assert gpu.threads >= 2 and "GPU" in gpu.reason
    small = plan_workers("cuda", cores=2, cells=40)
    assert (small.workers, small.threads) == (1, 2)
    assert plan_workers("cuda", cores=16, cells=40, requested=2).workers == 2
    capped = plan_workers("cuda", cores=16, cells=40, requested=16)
    assert capped.workers == GPU_WORKERS_PER_DEVICE and "capped" in capped.reason
    assert plan_workers("cuda", cores=64, cells=40, gpus=2).workers == 2 * GPU_WORKERS_PER_DEVICE
    with pytest.raises(ValueError, match="cores"):
        plan_workers("cpu", cores=0, cells=1)
    with pytest.raises(ValueError, match="requested"):
        plan_workers("cpu", cores=2, cells=1, requested=0)


# -- deterministic resampling -----------------------------------------------------------------
def test_linear_resample_equals_interpolate_and_ignores_padding():
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([7, 1, 4, 2])
    x = torch.randn(4, 7, 3, generator=g, dtype=torch.float64)
    steps = 5
    out = linear_resample(x, lengths, steps)
    for b, n in enumerate(lengths.tolist()):
        seq = x[b, :n].T[None]
        want = seq.expand(-1, -1, steps) if n == 1 else F.interpolate(seq, size=steps, mode="linear", align_corners=True)
        torch.testing.assert_close(out[b], want[0].T, rtol=1e-12, atol=1e-12)
    garbage = x.clone()
    garbage[2, 4:] = 1e6
    assert torch.equal(linear_resample(garbage, lengths, steps), out)
    rows = interpolation_matrix(lengths, steps, 7, torch.float64).sum(-1)
    torch.testing.assert_close(rows, torch.ones(4, steps, dtype=torch.float64))
    one = linear_resample(x, lengths, 1)
    assert torch.equal(one[:, 0], x[:, 0])


def test_linear_resample_gradient_is_the_transposed_product():
    x = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 3])
    (grad,) = torch.autograd.grad(linear_resample(x, lengths, 4).sum(), x)
    assert torch.all(grad[1, 3:] == 0)  # padding gets no gradient
    assert torch.autograd.gradcheck(lambda t: linear_resample(t, lengths, 4), (x,))
    with pytest.raises(ValueError, match="steps"):
        linear_resample(x, lengths, 0)
    with pytest.raises(ValueError, match="lengths"):
        linear_resample(x, torch.tensor([6]), 4)


# -- CUDA: the same seed gives bit-identical metrics ------------------------------------------
def _train_on_cuda(ds, name, seed):
    seed_everything(seed)
    model = MODELS.create(name, ds.spec, hidden=16)
    fit(model, ds, TrainConfig(epochs=2, patience=5), seed=seed, device="cuda")
    metrics, preds = evaluate(model, ds.splits["test"], ds.spec, device="cuda")
    return metrics, preds, determinism_status("cuda")


@needs_cuda
@pytest.mark.parametrize("name", [
    "mcer", "misa",
    pytest.param("early-fusion", marks=pytest.mark.xfail(
        strict=True, raises=RuntimeError,
        reason="baselines/early_fusion.py still resamples with F.interpolate, whose CUDA backward has no "
               "deterministic form; switch it to harness.resample.linear_resample")),
])
def test_cuda_same_seed_bit_identical_metrics(tiny_dataset, name, restore_determinism):
    m1, p1, ok1 = _train_on_cuda(tiny_dataset, name, seed=0)
    m2, p2, ok2 = _train_on_cuda(tiny_dataset, name, seed=0)
    assert ok1 and ok2
    assert m1 == m2
    assert torch.equal(torch.as_tensor(p1.outputs), torch.as_tensor(p2.outputs))


# -- CPU allocator -------------------------------------------------------------------------------
ALLOCATION = """
import sys, torch
from harness.runtime import configure_cpu_allocator
ok = configure_cpu_allocator() if sys.argv[1] == "configured" else None
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20
big = torch.ones(2**22); del big  # a freed 16 MiB block raises glibc's dynamic mmap threshold to 16 MiB
base = rss()
xs = [torch.ones(2**20) for _ in range(64)]  # 64 blocks of 4 MiB, now served from the heap
pin = torch.ones(1024)  # allocated after them: the heap top cannot shrink past it
held = rss()
del xs
print(ok, round(held - base), round(rss() - base))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc and /proc are Linux-only")
def test_configured_allocator_returns_freed_tensor_memory():
    """(Without the setting glibc usually keeps those blocks: not asserted, it depends on its heap state.)"""
    res = subprocess.run([sys.executable, "-c", ALLOCATION, "configured"], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[1])
    ok, held, after = res.stdout.split()
    assert ok == "True"
    assert int(held) >= 200  # the 256 MiB were resident
    assert int(after) < 32  # and went back to the OS when freed


def test_allocator_threshold_is_checked():
    with pytest.raises(ValueError, match="mmap_threshold"):
        configure_cpu_allocator(0)


# -- provenance: each result row says whether it reproduces, and the report says when not --------
def test_result_rows_record_whether_they_reproduce(tmp_path):
    from harness.run.config import parse_config
    from harness.run.driver import run_sweep
    from harness.store import ResultStore

    raw = {"run": {"name": "det", "seeds": [0]}, "train": {"epochs": 1},
           "models": [{"name": "text-only", "options": {"hidden": 8}}],
           "datasets": [{"name": "synthetic", "options": {"n_train": 4, "n_valid": 2, "n_test": 2, "keep_raw": False}}],
           "deployment": {"enabled": False}}
    run_sweep(parse_config(raw), tmp_path / "run", raw_config=raw, progress=False, log=lambda _m: None)
    df = ResultStore(tmp_path / "run" / "results.sqlite", read_only=True).dataframe()
    assert len(df) == 1 and df["deterministic"].tolist() == [1]  # the CPU's kernels are deterministic
    from reports.build import build_report

    build_report(tmp_path / "run", n_boot=50)
    assert "Not bit-reproducible" not in (tmp_path / "run" / "report.md").read_text()


def test_report_names_rows_that_do_not_reproduce():
    import pandas as pd

    from reports.build import _determinism_lines

    df = pd.DataFrame({"variant": ["mcer", "mcer", "tfn"], "device": ["cuda:H200"] * 3,
                       "deterministic": [1, 0, None]})
    (line, _) = _determinism_lines(df)
    assert line.startswith("**Not bit-reproducible:** 1 of 3 result rows (mcer)") and "cuda:H200" in line
    assert _determinism_lines(df.assign(deterministic=1)) == []
    assert _determinism_lines(df.drop(columns="deterministic")) == []  # a store from before the column


# run_cells hands the executors the sweep's feature-cache settings; these sweeps have no raw media
NO_FEATURE_CACHE = DatasetCache()


def test_process_executor_sizes_workers_with_the_plan(monkeypatch, tmp_path):
    from harness.run import executors
    from harness.run.config import parse_config
    from harness.run.driver import run_cells

    seen = {}

    def fake_run_on_processes(todo, out, device_name, cfg_hash, emit_training, emit_result, workers, threads=None,
                              env=None, features=None):
        seen.update(workers=workers, threads=threads)

    monkeypatch.setattr(executors, "run_on_processes", fake_run_on_processes)
    monkeypatch.setattr(executors, "default_workers", lambda: 16)
    cfg = parse_config({"run": {"executor": "processes"}, "models": [{"name": "text-only"}],
                        "datasets": [{"name": "synthetic"}]})
    todo = [(object(), [])] * 40
    run_cells(cfg, todo, tmp_path, NO_FEATURE_CACHE, torch.device("cpu"), "h", print, print)
    assert seen == {"workers": 16, "threads": 1}
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    run_cells(cfg, todo, tmp_path, NO_FEATURE_CACHE, torch.device("cuda"), "h", print, print)
    assert seen == {"workers": GPU_WORKERS_PER_DEVICE, "threads": 16 // GPU_WORKERS_PER_DEVICE}


def test_the_portable_mode_runs_its_cells_in_fresh_single_thread_processes_with_its_environment(monkeypatch, tmp_path):
    """Its variables only act before torch is imported, so even the local executor hands its cells
    to one worker process started with them, and every worker runs one thread."""
    from harness.run import executors
    from harness.run.config import parse_config
    from harness.run.driver import run_cells
    from harness.runtime import PORTABLE_ENVIRONMENT

    seen = {}

    def fake_run_on_processes(todo, out, device_name, cfg_hash, emit_training, emit_result, workers, threads=None,
                              env=None, features=None):
        seen.update(workers=workers, threads=threads, env=env)

    monkeypatch.setattr(executors, "run_on_processes", fake_run_on_processes)
    monkeypatch.setattr(executors, "default_workers", lambda: 16)
    todo = [(object(), [])] * 40
    for executor, workers in (("processes", 16), ("local", 1)):
        cfg = parse_config({"run": {"executor": executor, "arithmetic": "portable"}, "models": [{"name": "text-only"}],
                            "datasets": [{"name": "synthetic"}]})
        seen.clear()
        run_cells(cfg, todo, tmp_path, NO_FEATURE_CACHE, torch.device("cpu"), "h", print, print)
        assert seen == {"workers": workers, "threads": 1, "env": PORTABLE_ENVIRONMENT}


def test_worker_env_sets_the_variables_while_workers_start_and_restores_them(monkeypatch):
    import os

    from harness.run.executors import worker_env

    monkeypatch.setenv("MKL_CBWR", "before")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    with worker_env({"MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}):
        assert os.environ["MKL_CBWR"] == "AVX2" and os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert os.environ["MKL_CBWR"] == "before" and "ONEDNN_MAX_CPU_ISA" not in os.environ
