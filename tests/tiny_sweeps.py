"""The small sweep configs the tests run: one text-only model on a tiny synthetic dataset.

``tiny_sweep_toml``: the smallest, one epoch, optionally one feature-noise corruption (the
command-line tests). ``seeded_sweep_toml``: several seeds, several cells each (the crash, resume
and cluster tests)."""

from __future__ import annotations


def tiny_sweep_toml(n_train: int = 2, n_valid: int = 1, n_test: int = 1, max_utts: int = 3,
                    severity: int | None = 1) -> str:
    """The sweep as TOML text; ``severity=None`` leaves out the corruption."""
    text = f"""
[run]
name = "tiny"

[train]
epochs = 1

[[models]]
name = "text-only"
options = {{ hidden = 8 }}

[[datasets]]
name = "synthetic"
options = {{ n_train = {n_train}, n_valid = {n_valid}, n_test = {n_test}, min_utts = 2, max_utts = {max_utts}, keep_raw = false }}
"""
    if severity is not None:
        text += f"""
[[corruptions]]
name = "feature-gaussian"
severities = [{severity}]
options = {{ modality = "audio" }}
"""
    return text


def seeded_sweep_toml(name: str, seeds: tuple[int, ...] | list[int], executor: str = "local",
                      device: str = "cpu") -> str:
    """1 model x ``seeds`` x (clean + 2 severities): 3 cells per seed, one training cell per seed.

    Two epochs with batch size 4 give several optimiser steps per epoch. ``device`` stays "cpu"
    where bit-identical results are asserted, also on a GPU machine."""
    return f"""
[run]
name = "{name}"
seeds = {list(seeds)}
device = "{device}"
executor = "{executor}"

[train]
epochs = 2
batch_size = 4

[[models]]
name = "text-only"
options = {{ hidden = 8 }}

[[datasets]]
name = "synthetic"
options = {{ n_train = 4, n_valid = 2, n_test = 2, min_utts = 3, max_utts = 4, keep_raw = false }}

[[corruptions]]
name = "feature-gaussian"
severities = [2, 5]
options = {{ modality = "text" }}
"""
