"""Atomic, verified checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint is ``{"state_dict": ..., "meta": <JSON-compatible dict>}`` written to a temporary
file, fsynced and renamed into place, with a ``.sha256`` sidecar written the same way. Loading
verifies the digest first, so a file cut short by a crash is never used, and then unpickles
with ``weights_only=True``, so a checkpoint that carries pickled code is refused unexecuted.
Temporary files left by a writer killed before its rename are removed by the next write.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch

from harness import faults


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, altered or not loadable as weights only."""


def atomic_write(path: Path, data: bytes, fault_point: str | None = "checkpoint-tmp-written") -> None:
    """Write ``data`` to a fsynced temporary sibling, then rename it over ``path`` (and fsync the
    folder). ``fault_point``: the :mod:`harness.faults` point hit between the two (None: none).
    One writer per path at a time: a write removes the temporary files other writers of the same
    path left behind."""
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a writer killed before its rename
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if fault_point is not None:
        faults.hit(fault_point)
    os.replace(tmp, path)
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save_checkpoint(path: str | Path, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> str:
    """Write ``state_dict`` and ``meta`` atomically; return the SHA-256 of the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    json.dumps(meta)  # meta must be plain data: fail here, not at load time
    buf = io.BytesIO()
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}, "meta": meta}, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    sidecar = path.with_name(path.name + ".sha256")
    sidecar.unlink(missing_ok=True)  # an old digest must never vouch for a new file
    atomic_write(path, data)
    faults.hit("checkpoint-before-digest")
    atomic_write(sidecar, digest.encode())
    return digest


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verify and load a checkpoint; raise :class:`CheckpointError` naming the file otherwise."""
    path = Path(path)
    sidecar = path.with_name(path.name + ".sha256")
    if not path.is_file() or not sidecar.is_file():
        raise CheckpointError(f"checkpoint {path} or its digest {sidecar.name} is missing")
    data = path.read_bytes()
    expected = sidecar.read_text().strip()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise CheckpointError(f"checkpoint {path} does not match its SHA-256 digest (truncated or altered)")
    try:
        obj = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types; all mean "refused"
        raise CheckpointError(f"checkpoint {path} cannot be loaded as weights only: {exc}") from exc
    if not isinstance(obj, dict) or "state_dict" not in obj or "meta" not in obj:
        raise CheckpointError(f"checkpoint {path} lacks the 'state_dict' and 'meta' keys")
    return obj["state_dict"], obj["meta"]
