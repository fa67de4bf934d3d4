"""Shared fixtures: tiny synthetic datasets built once per test session."""

from __future__ import annotations

import pytest
import torch

# Tiny test models run faster on one thread (thread start-up dominates); subprocess
# tests (sweeps, Ray) use torch's default.
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_thread():
    """One torch intra-op thread for a module of tiny-tensor tests, the previous count restored
    after it (a test elsewhere may have changed it): thread start-up would dominate, and two
    cores are shared."""
    from harness.runtime import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def tiny_dataset():
    """A few short dialogues with raw media, 4 classes, 2 speakers."""
    from harness import DATASETS

    return DATASETS.create("synthetic", n_train=8, n_valid=3, n_test=3, min_utts=3, max_utts=6, seed=1)


@pytest.fixture(scope="session")
def tiny_regression_dataset():
    from harness import DATASETS

    return DATASETS.create("synthetic", task="regression", n_train=8, n_valid=3, n_test=3, min_utts=3, max_utts=6,
                           seed=1, keep_raw=False)
