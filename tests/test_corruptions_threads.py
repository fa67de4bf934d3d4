"""Paired corruption does not depend on the machine: an utterance's corrupted waveform and its
re-extracted features are the same with 1 torch thread, the machine's maximum and 16, and the
same whatever it is corrupted with and in whichever order."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from harness import CORRUPTIONS, DATASETS
from harness.corruption import RawCorruption
from harness.data.types import Dialogue

ADDITIVE = ["audio-white", "audio-pink", "audio-brown", "audio-babble", "audio-background"]
THREADS = sorted({1, os.cpu_count() or 1, 16})


@pytest.fixture(scope="module")
def ds():
    return DATASETS.create("synthetic", n_train=1, n_valid=1, n_test=3, min_utts=2, max_utts=4, seed=3)


@pytest.fixture(scope="module")
def long_test(ds):
    """The test split with every waveform repeated 4x (2.4-4.8 s, 38k-77k samples): long enough
    that a multi-threaded reduction or FFT would split one utterance between threads."""
    return [Dialogue(d.dialogue_id, [replace(u, raw=replace(u.raw, waveform=np.tile(u.raw.waveform, 4)))
                                     for u in d.utterances]) for d in ds.splits["test"]]


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(0)
    sf.write(d / "hiss.wav", (0.1 * rng.standard_normal(12000)).astype(np.float32), 8000)
    sf.write(d / "hum.wav", (0.1 * np.sin(np.arange(20000) * 0.01)).astype(np.float32), 16000)
    return str(d)


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _make(name, ds, noise_dir, **options):
    if name == "audio-background":
        options["noise_dir"] = noise_dir
    return CORRUPTIONS.create(name, **options).bind(ds)


def _by_uid(dialogues, c):
    return {u.uid: (getattr(u.raw, c.raw_field), u.features[c.modality]) for d in dialogues for u in d}


def _assert_same(a, b, what):
    assert a.keys() <= b.keys() or b.keys() <= a.keys()
    for uid in a.keys() & b.keys():
        (ra, fa), (rb, fb) = a[uid], b[uid]
        same_raw = ra == rb if isinstance(ra, str) else np.array_equal(ra, rb)
        assert same_raw, f"{what}: raw media of {uid} differ"
        assert torch.equal(fa, fb), f"{what}: features of {uid} differ"


@pytest.mark.parametrize("lengths", ["as-is", "4x"])
@pytest.mark.parametrize("schedule", ["stationary", "bursts"])
@pytest.mark.parametrize("name", ADDITIVE)
def test_additive_noise_independent_of_threads_batch_and_order(name, schedule, lengths, ds, long_test, noise_dir,
                                                               restore_threads):
    c = _make(name, ds, noise_dir, schedule=schedule)
    test = long_test if lengths == "4x" else ds.splits["test"]
    runs = {}
    for n in THREADS:
        torch.set_num_threads(n)
        runs[n] = _by_uid(c(test, 4, 11), c)
        if name != "audio-babble":  # babble mixes the other utterances of the call: alone it has none
            _assert_same(runs[n], _by_uid(c([test[1]], 4, 11), c), f"{n} threads, alone vs whole test set")
            _assert_same(runs[n], _by_uid(c([test[2], test[0]], 4, 11), c), f"{n} threads, a subset")
        _assert_same(runs[n], _by_uid(c(list(reversed(test)), 4, 11), c), f"{n} threads, reversed order")
    for n in THREADS[1:]:
        _assert_same(runs[THREADS[0]], runs[n], f"{THREADS[0]} vs {n} threads")
    assert len(runs[1]) == sum(len(d) for d in test)


def test_every_raw_corruption_independent_of_threads(ds, noise_dir, restore_threads):
    test = ds.splits["test"]
    for name in CORRUPTIONS.names():
        c = CORRUPTIONS.get(name).obj
        if not issubclass(c, RawCorruption):
            continue
        c = _make(name, ds, noise_dir)
        outs = []
        for n in (1, 16):
            torch.set_num_threads(n)
            outs.append(_by_uid(c(test, 3, 5), c))
        _assert_same(outs[0], outs[1], f"{name}: 1 vs 16 threads")
