"""The smallest sweep config the command-line tests run: one text-only model, one epoch, a tiny
synthetic dataset, and optionally one feature-noise corruption."""

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
