"""Nothing reaches the network at run time: every plugin imports, and the lazily imported
libraries (albumentations, noisereduce, transformers' audio utilities) load and run, with every
socket connection refused. Runs in a fresh interpreter so nothing is imported already."""

from __future__ import annotations

import os

from no_network import run_without_network

CODE = r"""
from harness import CORRUPTIONS, DATASETS, DEFENSES, EXTRACTORS, MODELS, load_plugins
load_plugins()
names = {r.kind: r.names() for r in (MODELS, DATASETS, CORRUPTIONS, DEFENSES, EXTRACTORS)}
ds = DATASETS.create("synthetic", n_train=1, n_valid=1, n_test=1, min_utts=2, max_utts=2, seed=0)
test = ds.splits["test"]
for name in ("video-gaussian-blur", "audio-pink"):  # albumentations; transformers' mel filter bank
    CORRUPTIONS.create(name, device="cpu").bind(ds)(test, 2, 0)
DEFENSES.create("denoise-spectral", device="cpu").bind(ds)(test)  # noisereduce
import albumentations
result = {"names": names, "albumentations": albumentations.__version__}
"""


def test_plugins_import_and_run_without_network():
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}  # our code must set it
    out = run_without_network(CODE, env=env)
    assert out["attempts"] == [], f"network attempts at run time: {out['attempts']}"
    assert "Error fetching version info" not in out["stderr"]
    assert out["names"]["model"] and out["names"]["corruption"] and out["names"]["extractor"]
