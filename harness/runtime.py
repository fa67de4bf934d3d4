"""Device selection, mixed precision, seeding, determinism and worker sizing: nothing else
hard-codes a device.

Determinism: :func:`seed_everything` seeds every generator and switches torch to its
deterministic algorithms *strictly* (an op without a deterministic form raises instead of
warning), so a seeded run gives bit-identical results on the same machine, CPU or CUDA.
:func:`determinism_status` says whether that holds for a device right now (a result row's
provenance records it); code that must run an op without a deterministic CUDA form does so
inside :func:`allow_nondeterministic`, which marks the process's results as not reproducible.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

# cuBLAS reads this when its first handle is created; deterministic mode refuses cuBLAS
# products without it. Set at import, before any CUDA work, unless the user chose a value.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
_DETERMINISTIC_CUBLAS = (":4096:8", ":16:8")
_NONDETERMINISTIC: list[str] = []  # reasons recorded by allow_nondeterministic since the last seeding


PORTABLE_ENVIRONMENT: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's AVX2 kernels, also on a CPU with AVX-512
    "MKL_CBWR": "AVX2",             # MKL's conditional numerical reproducibility: its AVX2 code path on every CPU
    "ONEDNN_MAX_CPU_ISA": "AVX2",   # oneDNN (convolutions) capped at AVX2
    "OMP_NUM_THREADS": "1",         # one thread: a reduction's order does not depend on the core count
    "MKL_NUM_THREADS": "1",
}
"""The portable arithmetic mode: environment variables that make a CPU run follow the same
floating-point path on every x86-64 processor with AVX2 (Intel since 2013, AMD since 2015).
They must be set before torch is imported (in the worker processes' environment);
``benchmarks/portable_arithmetic.py`` measures what they buy and cost (docs/PERFORMANCE.md).
The AVX2 baseline rather than the SSE one every x86-64 CPU has: the same reproducibility on
every machine this project has met, at about the native speed instead of up to twice the time."""


def select_device(name: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; any torch device string is accepted."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available on this machine")
    return device


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype for ``device``: bf16 (or fp16) on CUDA, None (full fp32) on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """Autocast on CUDA when ``enabled``; a no-op on the CPU (keeps CPU runs bit-reproducible)."""
    dtype = amp_dtype(device) if enabled else None
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and switch torch to deterministic kernels (strictly).

    Two runs with the same seed on the same machine and thread count then give identical
    results, on the CPU and on CUDA (where cuDNN's autotuner is switched off, cuBLAS uses a
    fixed workspace, and SDPA picks only kernels with a deterministic backward). An op without
    a deterministic implementation raises a ``RuntimeError`` naming it; wrap such code in
    :func:`allow_nondeterministic`. Clears the marks that context left.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    _NONDETERMINISTIC.clear()


@contextlib.contextmanager
def allow_nondeterministic(reason: str) -> Iterator[None]:
    """Run code that needs an op with no deterministic CUDA form (``reason`` names it).

    Inside, torch only warns about such ops; afterwards :func:`determinism_status` reports
    ``False`` for CUDA until the next :func:`seed_everything`. Note that an op's backward runs
    at ``loss.backward()``: wrap the whole training step, not only the forward.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"allow_nondeterministic needs a reason naming the op, got {reason!r}")
    was_on = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    _NONDETERMINISTIC.append(reason)
    if was_on:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        if was_on:
            torch.use_deterministic_algorithms(True, warn_only=was_warn)


def determinism_status(device: torch.device | str) -> bool:
    """Whether a seeded run on ``device`` reproduces bit for bit on the same machine right now.

    CPU: always (the kernels are deterministic for a fixed thread count). CUDA: only when
    deterministic algorithms are on without ``warn_only``, cuBLAS has a fixed workspace
    (``CUBLAS_WORKSPACE_CONFIG``), cuDNN's autotuner is off, and no
    :func:`allow_nondeterministic` block ran since the last :func:`seed_everything`. Meant for
    each result row's provenance (``deterministic: true/false``).
    """
    device = torch.device(device) if isinstance(device, str) else device
    if device.type == "cpu":
        return True
    return (torch.are_deterministic_algorithms_enabled()
            and not torch.is_deterministic_algorithms_warn_only_enabled()
            and os.environ.get("CUBLAS_WORKSPACE_CONFIG") in _DETERMINISTIC_CUBLAS
            and not torch.backends.cudnn.benchmark
            and not _NONDETERMINISTIC)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous count.

    A CPU reduction's summation order (and so its last bits) depends on how many threads
    split it; code whose output must not depend on the machine runs under a fixed count.
    The setting is process-wide: do not use it around code that other threads run concurrently.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"thread count must be a positive int, got {n!r}")
    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def machine_independent_threads(device: torch.device | str = "cpu") -> contextlib.AbstractContextManager[None]:
    """One intra-op thread for CPU work on ``device`` (a no-op elsewhere).

    Corruptions and feature extractors run under it: their output for an utterance must not
    depend on the machine's thread count (paired corruption), and one thread is the only count
    every machine has.
    """
    device = torch.device(device) if isinstance(device, str) else device
    return torch_threads(1) if device.type == "cpu" else contextlib.nullcontext()


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)


def configure_cpu_allocator(mmap_threshold: int = 1 << 20) -> bool:
    """Make glibc's malloc return freed tensor memory to the OS (Linux/glibc; no-op elsewhere).

    By default glibc serves blocks up to 32 MiB from its heap and keeps them when freed, so a
    training step's short-lived activations leave the process's resident memory well above
    what is alive (measured on the reference MCER step: peak RSS 2.4x the state floor with 1.9x
    live). With a fixed ``mmap_threshold`` (bytes) every larger block is mapped on allocation
    and unmapped on free, and the heap top is trimmed at once. Costs page faults on each new
    large block. Call once per process, early (CLI start, each worker). Returns whether glibc
    accepted the settings.
    """
    if isinstance(mmap_threshold, bool) or not isinstance(mmap_threshold, int) or mmap_threshold < 4096:
        raise ValueError(f"mmap_threshold must be an int >= 4096 bytes, got {mmap_threshold!r}")
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, 0))


@dataclass(frozen=True)
class WorkerPlan:
    """How to run training cells in parallel: ``workers`` processes with ``threads`` torch
    threads each, on ``device``; ``reason`` says why, for logs and provenance."""

    workers: int
    threads: int
    device: str
    reason: str


GPU_WORKERS_PER_DEVICE = 4
"""Worker processes that share one GPU at most (see :func:`plan_workers`)."""


def plan_workers(device: torch.device | str, cores: int, cells: int, requested: int | None = None,
                 gpus: int = 1) -> WorkerPlan:
    """Worker processes and torch threads for ``cells`` training cells on ``cores`` CPU cores.

    - CPU: one worker per core (``requested`` overrides), threads ``cores // workers``: small
      models gain nothing from more intra-op threads, and independent cells scale linearly.
    - CUDA: at most :data:`GPU_WORKERS_PER_DEVICE` workers per GPU and at least 2 cores per
      worker. Processes sharing a GPU do not run kernels concurrently (without MPS the GPU
      time-slices between their contexts), and each holds its own context (~0.5 GB). What
      several workers buy is overlap of one worker's CPU-side work (Python dispatch, batch
      collation, corruption, feature extraction) with another's kernels; past a few workers
      the GPU is saturated or time-sliced, and 16 workers on 16 cores left each with one
      thread for its dispatch and its CPU-side work, so each training ran no faster than on
      a 2-core CPU. Each worker gets ``cores // workers`` threads (>= 2): one drives the GPU,
      the rest do the CPU-side work.

    ``requested`` (e.g. ``run.workers``) caps the count; the result never exceeds ``cells``.
    """
    device = torch.device(device) if isinstance(device, str) else device
    for name, value in (("cores", cores), ("cells", cells), ("gpus", gpus)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"plan_workers: {name} must be a positive int, got {value!r}")
    if requested is not None and (isinstance(requested, bool) or not isinstance(requested, int) or requested < 1):
        raise ValueError(f"plan_workers: requested must be a positive int or None, got {requested!r}")
    if device.type == "cuda":
        limit = max(1, min(GPU_WORKERS_PER_DEVICE * gpus, cores // 2))
        reason = (f"{gpus} GPU(s) shared by at most {GPU_WORKERS_PER_DEVICE} workers each, >= 2 cores per worker "
                  f"({cores} cores)")
    else:
        limit = cores
        reason = f"one worker per CPU core ({cores} cores)"
    workers = min(limit, cells, requested if requested is not None else limit)
    if requested is not None and requested > workers:
        reason += f"; {requested} requested, capped"
    return WorkerPlan(workers=workers, threads=max(1, cores // workers), device=str(device), reason=reason)


def describe_node() -> str:
    """The machine this process runs on, for provenance: its host name, and in a process
    connected to Ray (a Ray worker) also ``/IP#NODE``: the node's address and the first 8 hex
    digits of its Ray node id, which tells apart nodes that share a host or an address."""
    host = socket.gethostname()
    ray = sys.modules.get("ray")  # not imported: not a Ray process, and no reason to import it
    if ray is not None and ray.is_initialized():
        return f"{host}/{ray.util.get_node_ip_address()}#{ray.get_runtime_context().get_node_id()[:8]}"
    return host


def portable_arithmetic() -> bool:
    """Whether this process runs in the portable arithmetic mode (:data:`PORTABLE_ENVIRONMENT`
    was in its environment when it started, and it runs one torch thread)."""
    return (all(os.environ.get(k) == v for k, v in PORTABLE_ENVIRONMENT.items())
            and torch.backends.cpu.get_cpu_capability() == "AVX2" and torch.get_num_threads() == 1)


def describe_device(device: torch.device) -> str:
    """``cuda:<name>``, or ``cpu:<n>threads`` (``cpu:1threads:portable`` in the portable mode)."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()}threads" + (":portable" if portable_arithmetic() else "")
