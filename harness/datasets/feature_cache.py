"""Where the raw-media loaders cache extracted features, and the content digest of a media file.

The cache itself is :class:`harness.extractors.cache.ExtractionCache`; a loader keys a clean
utterance's features by the SHA-256 of its media file's bytes plus any cut times and decode
settings (or of the transcript text), with the extractor's config and runtime.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

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
