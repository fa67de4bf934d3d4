"""On-disk cache of extracted features, keyed by source content hash + extractor config.

A key is ``sha256(content key of the source) + sha256(json(extractor config))``; the source
key is the SHA-256 of the media file's bytes plus any cut times and decode settings (or of
the transcript text). Entries are ``.npy`` files loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

_FILE_HASHES: dict[tuple[str, float, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's content, memoised per (path, mtime, size) within the process."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_mtime, st.st_size)
    if key not in _FILE_HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FILE_HASHES[key] = h.hexdigest()
    return _FILE_HASHES[key]


def default_cache_dir() -> Path:
    return Path(os.environ.get("MCER_BENCH_CACHE", Path.home() / ".cache" / "mcer-bench" / "features"))


class FeatureCache:
    """``get(source_key, config)`` / ``put(source_key, config, tensor)``; counts hits and misses."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def _path(self, source_key: str, config: dict[str, Any]) -> Path:
        cfg = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
        key = hashlib.sha256(f"{source_key}|{cfg}".encode()).hexdigest()
        return self.root / key[:2] / f"{key}.npy"

    def get(self, source_key: str, config: dict[str, Any]) -> torch.Tensor | None:
        p = self._path(source_key, config)
        if p.is_file():
            try:
                arr = np.load(p, allow_pickle=False)
            except (ValueError, OSError):
                return None  # unreadable entry: recomputed and overwritten
            self.hits += 1
            return torch.from_numpy(arr)
        self.misses += 1
        return None

    def put(self, source_key: str, config: dict[str, Any], value: torch.Tensor) -> None:
        p = self._path(source_key, config)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, value.detach().cpu().numpy().astype(np.float32), allow_pickle=False)
        os.replace(tmp, p)
