"""The on-disk cache of (corrupted) media features: safety rules, storage dtypes, size limit with
least-recently-used eviction, several processes at once, and its cross-process extraction counter."""

from __future__ import annotations

import io
import multiprocessing
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import harness.extractors.cache as cache_module
from harness import EXTRACTORS
from harness.data.types import RawMedia
from harness.datasets.media import decode_audio
from harness.extractors.base import config_digest
from harness.extractors.cache import CLEAN, ExtractionCache, ExtractionKey, corruption_id, extract_cached
from harness.extractors.random_models import save_audio_encoder

SR = 16000
SPEECH = Path(__file__).parent / "fixtures" / "speech"
SPAWN = multiprocessing.get_context("spawn")  # as the sweep executor starts its workers


def key(i: int, corruption: str = CLEAN, severity: int = 0) -> ExtractionKey:
    return ExtractionKey(f"utt{i}", corruption, severity, 0, "e" * 64, "cpu", "float32")


def features(i: int, rows: int = 50, dim: int = 16) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(i).standard_normal((rows, dim)).astype(np.float32))


def test_round_trip_in_each_storage_dtype(tmp_path):
    x = features(0) * 100
    sizes = {}
    for dtype, rel in (("float32", 0.0), ("float16", 2.0 ** -11), ("bfloat16", 2.0 ** -8)):  # half an ulp
        cache = ExtractionCache(tmp_path / dtype, dtype=dtype)
        cache.put(key(0), x, {"frames_without_face": 3})
        got = cache.get(key(0))
        assert got.features.dtype == torch.float32 and got.features.shape == x.shape
        assert bool(((got.features - x).abs() <= rel * x.abs()).all()), dtype
        assert got.stats == {"frames_without_face": 3}
        sizes[dtype] = cache.size_report()["bytes"]
        assert cache.get(key(1)) is None and (cache.hits, cache.misses) == (1, 1)
    assert sizes["float16"] == sizes["bfloat16"] < 0.55 * sizes["float32"]
    big = ExtractionCache(tmp_path / "overflow", dtype="float16")
    big.put(key(0), torch.tensor([[1e6, 1.0]]))  # beyond float16's range: kept in float32, exactly
    assert torch.equal(big.get(key(0)).features, torch.tensor([[1e6, 1.0]]))
    assert big.size_report()["by_extractor"][0]["dtype"] == "float32"


def test_the_key_names_every_part_and_the_storage_dtype_is_part_of_an_entry(tmp_path):
    ex = EXTRACTORS.create("logmel")
    k = ExtractionKey.of(ex, "utt0", corruption_id("audio-white", {"snr_db": 0}), 2, 7)
    assert k.condition == ('audio-white{"snr_db": 0}', 2, 7)
    assert (k.extractor, k.device, k.precision) == (config_digest(ex.config()), "cpu", "float32")
    a, b = ExtractionCache(tmp_path, dtype="float32"), ExtractionCache(tmp_path, dtype="bfloat16")
    a.put(k, features(1))
    assert b.get(k) is None and a.get(k) is not None
    for field, value in (("utterance", "utt1"), ("corruption", CLEAN), ("severity", 3), ("seed", 8),
                         ("extractor", "f" * 64), ("device", "cuda:NVIDIA H100"), ("precision", "bfloat16")):
        other = ExtractionKey(**{**k.__dict__, field: value})
        assert a.get(other) is None, field


def test_a_file_that_fails_its_digest_or_holds_a_pickle_is_refused_and_recomputed(tmp_path):
    cache = ExtractionCache(tmp_path)
    cache.put(key(0), features(0))
    cache.put(key(1), features(1))
    files = sorted((tmp_path / "data").rglob("*.npy"))
    assert len(files) == 2 and not list((tmp_path / "data").rglob(".*tmp*"))  # atomic: no temporary left
    with sqlite3.connect(tmp_path / "index.sqlite") as con:
        file0 = con.execute("SELECT file FROM entries WHERE utterance = 'utt0'").fetchone()[0]
        file1 = con.execute("SELECT file FROM entries WHERE utterance = 'utt1'").fetchone()[0]
    data = (tmp_path / file0).read_bytes()
    (tmp_path / file0).write_bytes(data[: len(data) // 2])  # truncated
    assert cache.get(key(0)) is None and cache.rejected == 1
    assert not (tmp_path / file0).exists()  # dropped
    # a hostile file whose digest the index was made to vouch for: np.load(allow_pickle=False) refuses it
    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    (tmp_path / file1).write_bytes(buf.getvalue())
    import hashlib

    with sqlite3.connect(tmp_path / "index.sqlite") as con:
        con.execute("UPDATE entries SET sha256 = ? WHERE file = ?", (hashlib.sha256(buf.getvalue()).hexdigest(), file1))
    assert cache.get(key(1)) is None and cache.rejected == 2
    calls = []
    got = cache.get_or_extract(key(1), lambda: (calls.append(1) or features(1), {}))
    assert calls == [1] and torch.equal(got.features, features(1)) and torch.equal(cache.get(key(1)).features,
                                                                                  features(1))


def test_size_limit_evicts_the_least_recently_used_and_reports_size(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "TOUCH_INTERVAL_S", 0.0)  # every read refreshes the entry's last use
    probe = ExtractionCache(tmp_path / "probe")
    probe.put(key(0), features(0))
    entry = probe.size_report()["bytes"]
    cache = ExtractionCache(tmp_path / "lru", max_bytes=3 * entry + entry // 2)
    for i in range(3):
        cache.put(key(i), features(i))
        time.sleep(0.01)
    assert cache.get(key(0)) is not None  # 0 is now more recent than 1
    time.sleep(0.01)
    cache.put(key(3), features(3))  # 4 entries > 3.5: the least recently used (1) goes
    report = cache.size_report()
    assert report["entries"] == 3 and report["bytes"] == 3 * entry <= report["max_bytes"]
    assert [cache.get(key(i)) is not None for i in range(4)] == [True, False, True, True]
    assert len(list((tmp_path / "lru" / "data").rglob("*.npy"))) == 3  # the file went with its row
    assert report["by_extractor"] == [{"extractor": "e" * 64, "dtype": "float32", "entries": 3, "bytes": 3 * entry}]
    with pytest.raises(ValueError, match="max_bytes must be a positive int"):
        ExtractionCache(tmp_path / "x", max_bytes=0)
    with pytest.raises(ValueError, match="dtype must be one of float32, float16, bfloat16, got 'int8'"):
        ExtractionCache(tmp_path / "x", dtype="int8")


def _compute_all(root: str, n: int, log: str) -> None:
    """A worker: every key through get_or_extract; each computation appends a line to ``log``."""
    cache = ExtractionCache(root)

    def compute(i: int) -> tuple[torch.Tensor, dict[str, int]]:
        with open(log, "a") as f:
            f.write(f"{i}\n")
        time.sleep(0.02)  # long enough for the other process to ask for the same key meanwhile
        return features(i), {"frames": i}

    for i in range(n):
        got = cache.get_or_extract(key(i), lambda i=i: compute(i))
        assert torch.equal(got.features, features(i)) and got.stats == {"frames": i}


def _worker(root: str, n: int, log: str, puts: str, start: int) -> None:
    """Both races at once: the same keys as the other worker through get_or_extract, and 15
    entries of its own written with put into a second cache."""
    _compute_all(root, n, log)
    cache = ExtractionCache(puts, dtype="bfloat16")
    for i in range(start, start + 15):
        cache.put(key(i), features(i))


def test_two_processes_share_the_cache_and_extract_each_entry_once(tmp_path):
    root, log = str(tmp_path / "cache"), tmp_path / "computed.log"
    log.touch()
    workers = [SPAWN.Process(target=_worker, args=(root, 12, str(log), str(tmp_path / "puts"), s)) for s in (0, 15)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert sorted(int(x) for x in log.read_text().split()) == list(range(12))  # each once, by one of them
    cache = ExtractionCache(root)
    assert cache.extraction_counts() == {(CLEAN, 0, 0): 12}
    assert all(torch.equal(cache.get(key(i)).features, features(i)) for i in range(12))
    # two writers of different entries at once: every entry whole and readable
    puts = ExtractionCache(tmp_path / "puts", dtype="bfloat16")
    assert puts.size_report()["entries"] == 30
    assert all(torch.allclose(puts.get(key(i)).features, features(i), atol=0.05) for i in range(30))
    assert not list((tmp_path / "puts" / "data").rglob(".*tmp*"))


MODELS, SEEDS, CORRUPTIONS, SEVERITIES = ("model-a", "model-b"), (0, 1), ("white", "hum"), (1, 2)


def corrupt(wave: np.ndarray, corruption: str, severity: int, seed: int) -> np.ndarray:
    """A stand-in raw-audio corruption: white noise or a 50 Hz hum, louder with severity, seeded."""
    rng = np.random.default_rng([seed, severity, len(corruption)])
    noise = (rng.standard_normal(len(wave)) if corruption == "white"
             else np.sin(2 * np.pi * 50 * np.arange(len(wave)) / SR + rng.uniform(0, 6.28)))
    return (wave + 0.05 * severity * noise).astype(np.float32)


def _sweep_worker(root: str, encoder: str, cells: list[tuple[str, int, str, int]]) -> None:
    """Evaluate ``cells`` (model, seed, corruption, severity) as a sweep worker would: the clean
    test set and the corrupted one of each cell, their features through the shared cache."""
    extractor = EXTRACTORS.create("audio-encoder", path=encoder, device="cpu")
    cache = ExtractionCache(root)
    waves = [decode_audio(p, SR) for p in sorted(Path(SPEECH).glob("*.wav"))]
    for _model, _seed, corruption, severity in cells:
        for cond, sev in ((CLEAN, 0), (corruption, severity)):
            keys = [ExtractionKey.of(extractor, f"utt{i}", cond, sev, seed=0) for i in range(len(waves))]
            feats = extract_cached(extractor, cache, keys, lambda i, c=cond, s=sev: RawMedia(
                waveform=waves[i] if c == CLEAN else corrupt(waves[i], c, s, seed=0), sample_rate=SR))
            assert len(feats) == len(waves) and all(f.features.shape[1] == extractor.dim for f in feats)


def test_a_sweep_extracts_each_corrupted_test_set_once_across_workers_and_a_resume_extracts_nothing(tmp_path):
    encoder = str(save_audio_encoder(tmp_path / "w2v", "wav2vec2"))
    root = str(tmp_path / "cache")
    cells = [(m, s, c, v) for m in MODELS for s in SEEDS for c in CORRUPTIONS for v in SEVERITIES]  # 16 cells

    workers = [SPAWN.Process(target=_sweep_worker, args=(root, encoder, cells[k::2])) for k in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert [w.exitcode for w in workers] == [0, 0]
    n = len(list(SPEECH.glob("*.wav")))
    cache = ExtractionCache(root)
    digest = config_digest(EXTRACTORS.create("audio-encoder", path=encoder, device="cpu").config())
    counts = cache.extraction_counts(digest)
    # 4 corrupted test sets (2 corruptions x 2 severities) and 1 clean one, each extracted exactly once
    assert counts == {(CLEAN, 0, 0): n, **{(c, v, 0): n for c in CORRUPTIONS for v in SEVERITIES}}
    _sweep_worker(root, encoder, cells)  # a resumed (or repeated) sweep: everything comes from the cache
    assert cache.extraction_counts(digest) == counts
    assert cache.size_report()["entries"] == 5 * n
