"""On-disk cache of extracted features, keyed by source content hash + extractor config.

A key is ``sha256(content key of the source) + sha256(json(extractor config))``; the source
key is the SHA-256 of the media file's bytes plus any cut times and decode settings (or of
the transcript text). Entries are ``.npy`` files loaded with ``allow_pickle=False``; the
extractor's counts for the item (e.g. frames without a face), when it has any, are kept
beside the entry as JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.extractors.base import config_digest

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
        key = hashlib.sha256(f"{source_key}|{config_digest(config)}".encode()).hexdigest()
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

    def put(self, source_key: str, config: dict[str, Any], value: torch.Tensor,
            stats: dict[str, int] | None = None) -> None:
        p = self._path(source_key, config)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, value.detach().cpu().numpy().astype(np.float32), allow_pickle=False)
        os.replace(tmp, p)
        sidecar = p.with_suffix(".stats.json")
        if stats:
            tmp = p.with_suffix(f".tmp{os.getpid()}.json")
            tmp.write_text(json.dumps({k: int(v) for k, v in stats.items()}, sort_keys=True))
            os.replace(tmp, sidecar)
        else:
            sidecar.unlink(missing_ok=True)

    def stats(self, source_key: str, config: dict[str, Any]) -> dict[str, int]:
        """The extractor's counts stored with an entry by :meth:`put` (empty when it had none)."""
        try:
            stats = json.loads(self._path(source_key, config).with_suffix(".stats.json").read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in stats.items()} if isinstance(stats, dict) else {}
