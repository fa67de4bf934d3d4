"""On-disk cache of extracted features of clean and corrupted media, shared by processes.

What an encoder makes of a corrupted utterance depends only on :class:`ExtractionKey`: the
utterance, the corruption, its severity and seed, the extractor's configuration (a digest of
``config()``, which for a local model covers its files), and the device and precision it runs
on. So a sweep computes each such feature once, and every model, seed and worker process
reads it from here.

Safety, as for the result store and checkpoints (docs/FAULTS.md):

* no pickle: an entry is a ``.npy`` file loaded with ``allow_pickle=False``;
* digests: the SHA-256 of each file is kept in the index and checked on every read; a file
  that does not match (truncated, altered) is refused, dropped and recomputed;
* atomic writes: a file is written to a temporary sibling, fsynced and renamed into place
  (:func:`harness.checkpoint.atomic_write`) before its index row is committed, so a row always
  names a whole file;
* several processes: the index is an SQLite database (one transaction per change), and an
  entry is computed under a lock (one of 256 lock files, chosen by the key's digest), so two
  workers asking for the same missing entry compute it once.

Entries are stored in ``dtype`` (float32, float16 or bfloat16: half the bytes; float16 falls
back to float32 for an entry it cannot represent) and always read back as float32. With
``max_bytes`` the least recently used entries are evicted after each write until the cache
fits. Every extraction :meth:`ExtractionCache.get_or_extract` runs is counted in the index,
so :meth:`ExtractionCache.extraction_counts` tells, across processes, how many extractions a
sweep actually ran per condition.

The cache folder must be on a file system with working POSIX locks (a local disk, or a
shared one for Ray nodes that supports them).

:func:`using_cache` makes a cache the one that code run inside it uses (:func:`active_cache`):
a sweep opens its cache and loads its datasets inside it, so the raw-media loaders extract
their clean features through the sweep's cache too. :func:`media_key` is the content key of
an utterance's media, and :func:`add_stats` sums the extractors' per-item counts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from harness.checkpoint import atomic_write
from harness.data.types import RawMedia
from harness.extractors.base import Extractor, config_digest

log = logging.getLogger(__name__)

CLEAN = "clean"
"""The corruption of a clean (uncorrupted) extraction."""

CACHE_DTYPES = ("float32", "float16", "bfloat16")
StorageDtype = Literal["float32", "float16", "bfloat16"]
LOCK_STRIPES = 256
TOUCH_INTERVAL_S = 60.0
"""A read refreshes an entry's last-use time only when it is older than this, so a cached
sweep's reads write nothing; least-recently-used order is kept to this granularity."""

def corruption_id(name: str, options: Mapping[str, Any] | None = None) -> str:
    """A corruption's name with its options as canonical JSON (``"audio-white"``,
    ``'audio-white{"snr_db": 0}'``): two corruptions share cached features only when both agree."""
    return name if not options else f"{name}{json.dumps(dict(options), sort_keys=True, default=str)}"


@dataclass(frozen=True)
class ExtractionKey:
    """Everything an extracted feature tensor depends on.

    ``utterance``: a content key of the utterance's clean media (e.g. its id and the digest of
    its media file); ``corruption``: :data:`CLEAN` or a :func:`corruption_id`; ``severity`` and
    ``seed``: the corruption's; ``extractor``: :func:`config_digest` of the extractor's config;
    ``device`` and ``precision``: its :meth:`~harness.extractors.base.Extractor.runtime`.
    """

    utterance: str
    corruption: str
    severity: int
    seed: int
    extractor: str
    device: str
    precision: str

    @classmethod
    def of(cls, extractor: Extractor, utterance: str, corruption: str = CLEAN, severity: int = 0,
           seed: int = 0) -> ExtractionKey:
        runtime = extractor.runtime()
        return cls(utterance, corruption, int(severity), int(seed), config_digest(extractor.config()),
                   runtime["device"], runtime["precision"])

    @property
    def condition(self) -> tuple[str, int, int]:
        """``(corruption, severity, seed)``: what :meth:`ExtractionCache.extraction_counts` groups by."""
        return self.corruption, self.severity, self.seed


@dataclass(frozen=True)
class CachedFeatures:
    """A feature tensor (float32) and the extractor's counts for its item (e.g. frames without a face)."""

    features: torch.Tensor
    stats: dict[str, int] = field(default_factory=dict)


def _key_columns() -> str:
    """The SQL columns of an :class:`ExtractionKey`, one per field, in field order."""
    return ",\n    ".join(f"{f.name} {'INTEGER' if f.type == 'int' else 'TEXT'} NOT NULL" for f in fields(ExtractionKey))


SCHEMA = f"""
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    nbytes INTEGER NOT NULL,
    dtype TEXT NOT NULL,
    stats TEXT NOT NULL,
    {_key_columns()},
    created REAL NOT NULL,
    last_used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_last_used ON entries (last_used);
CREATE TABLE IF NOT EXISTS extractions (
    {_key_columns()},
    pid INTEGER NOT NULL,
    at REAL NOT NULL
);
"""


def _encode(x: torch.Tensor, dtype: str) -> tuple[bytes, str]:
    """``.npy`` bytes of ``x`` stored as ``dtype`` and the dtype actually stored: bfloat16 as its
    raw 16-bit pattern; float16 becomes float32 where it would turn a finite value infinite."""
    x = x.detach().float().cpu().contiguous()
    if dtype == "float16":
        half = x.half()
        if bool(torch.isfinite(half).eq(torch.isfinite(x)).all()):
            arr = half.numpy()
        else:
            arr, dtype = x.numpy(), "float32"
    elif dtype == "bfloat16":
        arr = x.to(torch.bfloat16).view(torch.int16).numpy()
    else:
        arr = x.numpy()
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue(), dtype


def _decode(data: bytes, dtype: str) -> torch.Tensor:
    arr = np.load(io.BytesIO(data), allow_pickle=False)
    t = torch.from_numpy(np.array(arr))  # a writable copy
    return t.view(torch.bfloat16).float() if dtype == "bfloat16" else t.float()


class ExtractionCache:
    """Feature tensors by :class:`ExtractionKey` in folder ``root`` (see the module docstring).

    ``dtype``: the storage dtype (part of every entry's identity: caches of two dtypes in one
    folder do not mix). ``max_bytes``: evict least recently used entries past this size (None:
    no limit). ``hits``, ``misses`` and ``rejected`` (files that failed their digest) count this
    process's reads.
    """

    def __init__(self, root: str | Path, dtype: StorageDtype = "float32", max_bytes: int | None = None) -> None:
        if dtype not in CACHE_DTYPES:
            raise ValueError(f"feature cache: dtype must be one of {', '.join(CACHE_DTYPES)}, got {dtype!r}")
        if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
            raise ValueError(f"feature cache: max_bytes must be a positive int (bytes) or None, got {max_bytes!r}")
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"feature cache: {self.root} exists and is not a folder")
        self.dtype = dtype
        self.max_bytes = max_bytes
        self.hits = self.misses = self.rejected = 0
        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        with self._connect() as con, con:
            con.executescript(SCHEMA)

    # -- plumbing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A rollback journal (not WAL), as in the result store: WAL needs shared memory, which a
        # network file system shared by Ray nodes does not give.
        with closing(sqlite3.connect(self.root / "index.sqlite", timeout=120.0)) as con:
            con.execute("PRAGMA journal_mode=DELETE")
            con.execute("PRAGMA synchronous=NORMAL")  # a lost row only costs a recomputation
            yield con

    def _name(self, key: ExtractionKey) -> str:
        return hashlib.sha256(json.dumps([asdict(key), self.dtype], sort_keys=True).encode()).hexdigest()

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """Hold the lock stripe of entry ``name`` (one of :data:`LOCK_STRIPES` files, by its first
        two hex digits). A lock is per open file, so threads of one process exclude each other too."""
        with open(self.root / "locks" / f"{name[:2]}.lock", "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- reads ----------------------------------------------------------------------------
    def get(self, key: ExtractionKey) -> CachedFeatures | None:
        """The cached features of ``key`` (digest checked), or None."""
        found = self._read(self._name(key))
        self.hits += found is not None
        self.misses += found is None
        return found

    def _read(self, name: str) -> CachedFeatures | None:
        with self._connect() as con:
            row = con.execute("SELECT file, sha256, dtype, stats, last_used FROM entries WHERE key = ?",
                              (name,)).fetchone()
        if row is None:
            return None
        file, digest, dtype, stats, last_used = row
        try:
            data = (self.root / file).read_bytes()
        except FileNotFoundError:  # evicted or replaced by another process between the row and the file
            return None
        if hashlib.sha256(data).hexdigest() != digest:
            return self._refuse(name, file, "does not match its SHA-256 digest (truncated or altered)")
        try:
            features = _decode(data, dtype)
        except ValueError as exc:  # matches its digest but is no plain array: never written by this cache
            return self._refuse(name, file, f"is not a plain .npy array ({exc})")
        now = time.time()
        if now - last_used > TOUCH_INTERVAL_S:
            with self._connect() as con, con:
                con.execute("UPDATE entries SET last_used = ? WHERE key = ?", (now, name))
        return CachedFeatures(features, json.loads(stats))

    def _refuse(self, name: str, file: str, why: str) -> None:
        """Drop an entry whose file failed its check (it is then recomputed). File names carry their
        content digest, so no other entry or writer uses this file."""
        log.warning("feature cache: %s %s; dropped, to be recomputed", self.root / file, why)
        self.rejected += 1
        with self._connect() as con, con:
            con.execute("DELETE FROM entries WHERE key = ? AND file = ?", (name, file))
        (self.root / file).unlink(missing_ok=True)

    # -- writes ---------------------------------------------------------------------------
    def put(self, key: ExtractionKey, features: torch.Tensor, stats: Mapping[str, int] | None = None) -> None:
        """Store ``features`` (and the extractor's ``stats`` for the item) under ``key``."""
        name = self._name(key)
        with self._lock(name):
            self._store(name, key, features, stats, counted=False)
        self._evict(keep=name)

    def get_or_extract(self, key: ExtractionKey,
                       extract: Callable[[], tuple[torch.Tensor, Mapping[str, int]]]) -> CachedFeatures:
        """The cached features of ``key``; when there are none, run ``extract()`` -> ``(features,
        stats)`` once, store it and count the extraction. Other processes asking for the same key
        meanwhile wait for it instead of extracting it again."""
        name = self._name(key)
        found = self._read(name)
        if found is not None:
            self.hits += 1
            return found
        with self._lock(name):
            found = self._read(name)  # stored by another process while this one waited?
            if found is not None:
                self.hits += 1
                return found
            features, stats = extract()
            self._store(name, key, features, stats, counted=True)
        self.misses += 1
        self._evict(keep=name)
        return CachedFeatures(features.detach().float().cpu(), dict(stats))

    def _store(self, name: str, key: ExtractionKey, features: torch.Tensor, stats: Mapping[str, int] | None,
               counted: bool) -> None:
        """Write the entry (the caller holds its lock): the file first, then its row, so a row
        always names a whole file; the extraction count in the same transaction as the row."""
        data, dtype = _encode(features, self.dtype)
        digest = hashlib.sha256(data).hexdigest()
        file = f"data/{name[:2]}/{name}.{digest[:16]}.npy"
        (self.root / file).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.root / file, data, fault_point=None)
        now = time.time()
        k = tuple(asdict(key).values())
        entry = (name, file, digest, len(data), dtype,
                 json.dumps({s: int(v) for s, v in (stats or {}).items()}, sort_keys=True), *k, now, now)
        with self._connect() as con, con:
            old = con.execute("SELECT file FROM entries WHERE key = ?", (name,)).fetchone()
            con.execute(f"INSERT OR REPLACE INTO entries VALUES ({', '.join('?' * len(entry))})", entry)
            if counted:
                con.execute(f"INSERT INTO extractions VALUES ({', '.join('?' * (len(k) + 2))})",
                            (*k, os.getpid(), now))
        if old is not None and old[0] != file:
            (self.root / old[0]).unlink(missing_ok=True)

    def _evict(self, keep: str) -> None:
        """Delete least recently used entries (never ``keep``) until the cache fits ``max_bytes``."""
        if self.max_bytes is None:
            return
        with self._connect() as con:
            total = int(con.execute("SELECT COALESCE(SUM(nbytes), 0) FROM entries").fetchone()[0])
            if total <= self.max_bytes:
                return
            candidates = con.execute("SELECT key, file, nbytes FROM entries WHERE key != ? ORDER BY last_used, key",
                                     (keep,)).fetchall()
        for name, file, nbytes in candidates:
            if total <= self.max_bytes:
                break
            with self._connect() as con, con:
                gone = con.execute("DELETE FROM entries WHERE key = ? AND file = ?", (name, file)).rowcount
            if gone:  # else another process replaced or evicted it, and removes the old file itself
                (self.root / file).unlink(missing_ok=True)
                total -= nbytes

    # -- reports --------------------------------------------------------------------------
    def size_report(self) -> dict[str, Any]:
        """Entries and bytes in the cache, in all and per (extractor digest, storage dtype),
        the size limit, and this process's hits, misses and refused files."""
        with self._connect() as con:
            entries, nbytes = con.execute("SELECT COUNT(*), COALESCE(SUM(nbytes), 0) FROM entries").fetchone()
            groups = con.execute("SELECT extractor, dtype, COUNT(*), SUM(nbytes) FROM entries GROUP BY extractor, dtype "
                                 "ORDER BY extractor, dtype").fetchall()
        return {"root": str(self.root), "dtype": self.dtype, "max_bytes": self.max_bytes, "entries": int(entries),
                "bytes": int(nbytes),
                "by_extractor": [{"extractor": e, "dtype": d, "entries": int(n), "bytes": int(b)} for e, d, n, b in groups],
                "hits": self.hits, "misses": self.misses, "rejected": self.rejected}

    def extraction_counts(self, extractor: str | None = None) -> dict[tuple[str, int, int], int]:
        """Extractions run through :meth:`get_or_extract` (by any process, ever, in this folder)
        per ``(corruption, severity, seed)``; only those of one extractor digest when given."""
        where, args = ("WHERE extractor = ?", (extractor,)) if extractor is not None else ("", ())
        with self._connect() as con:
            rows = con.execute(f"SELECT corruption, severity, seed, COUNT(*) FROM extractions {where} "
                               "GROUP BY corruption, severity, seed ORDER BY corruption, severity, seed", args).fetchall()
        return {(c, int(s), int(d)): int(n) for c, s, d, n in rows}


def extract_cached(extractor: Extractor, cache: ExtractionCache, keys: Sequence[ExtractionKey],
                   media: Callable[[int], RawMedia], progress: str | None = None) -> list[CachedFeatures]:
    """Features of every ``keys[i]``: from ``cache``, or by extracting ``media(i)`` (called only
    on a miss, so a corruption runs only when its features are missing) one item at a time.
    ``progress``: a label for a progress bar on stderr (None: no bar)."""
    from tqdm.auto import tqdm

    def run(i: int) -> tuple[torch.Tensor, dict[str, int]]:
        features = extractor.extract([media(i)])[0]
        stats = extractor.item_stats()
        return features, (stats[0] if stats else {})

    return [cache.get_or_extract(key, lambda i=i: run(i))
            for i, key in enumerate(tqdm(keys, desc=progress, disable=progress is None, leave=False))]


_ACTIVE: ContextVar[ExtractionCache | None] = ContextVar("mcer_bench_extraction_cache", default=None)


@contextlib.contextmanager
def using_cache(cache: ExtractionCache | None) -> Iterator[None]:
    """Within this block :func:`active_cache` is ``cache`` (None: no cache is imposed)."""
    token = _ACTIVE.set(cache)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active_cache() -> ExtractionCache | None:
    """The cache set by the innermost :func:`using_cache` block, or None."""
    return _ACTIVE.get()


def media_key(uid: str, raw: RawMedia, field: str) -> str:
    """``"<uid>@<sha256>"``: utterance ``uid`` and the SHA-256 of its ``raw.<field>``
    (``waveform``, ``frames`` or ``transcript``) with its shape, dtype and rate, i.e. of what
    the modality's extractor reads. Two utterances share it only when both agree."""
    value = getattr(raw, field, None)
    h = hashlib.sha256(field.encode())
    if isinstance(value, str):
        h.update(value.encode("utf-8"))
    elif value is not None:
        arr = np.ascontiguousarray(value)
        h.update(f"{arr.dtype.str}{arr.shape}{raw.sample_rate}{raw.fps}".encode())
        h.update(memoryview(arr).cast("B"))
    return f"{uid}@{h.hexdigest()}"


def add_stats(items: Iterable[Mapping[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    """Sum per-modality counts (``{"video": {"frames_without_face": 2}}``) over ``items``."""
    total: dict[str, dict[str, int]] = {}
    for item in items:
        for modality, counts in item.items():
            into = total.setdefault(modality, {})
            for name, n in counts.items():
                into[name] = into.get(name, 0) + int(n)
    return total
