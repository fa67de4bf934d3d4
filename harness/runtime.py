"""Device selection, mixed precision and seeding: nothing else hard-codes a device."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import sys
from collections.abc import Iterator

import numpy as np
import torch


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
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels.

    Two CPU runs with the same seed then give identical results.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


def describe_node() -> str:
    """The machine this process runs on, for provenance: its host name, and in a process
    connected to Ray (a Ray worker) also ``/IP#NODE``: the node's address and the first 8 hex
    digits of its Ray node id, which tells apart nodes that share a host or an address."""
    host = socket.gethostname()
    ray = sys.modules.get("ray")  # not imported: not a Ray process, and no reason to import it
    if ray is not None and ray.is_initialized():
        return f"{host}/{ray.util.get_node_ip_address()}#{ray.get_runtime_context().get_node_id()[:8]}"
    return host


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()}threads"
