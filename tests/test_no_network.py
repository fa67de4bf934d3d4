"""Nothing reaches the network at run time: every plugin imports, and the lazily imported
libraries (albumentations, noisereduce, transformers' audio utilities) load and run, with every
socket connection refused. Runs in a fresh interpreter so nothing is imported already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, socket, sys
attempts = []

def refuse(*args, **kwargs):
    attempts.append(repr(args[:1]))
    raise OSError("network disabled by test_no_network")

class NoNetworkSocket(socket.socket):
    def connect(self, address):
        refuse(address)

    def connect_ex(self, address):
        refuse(address)

socket.socket = NoNetworkSocket
socket.create_connection = refuse
socket.getaddrinfo = refuse

from harness import CORRUPTIONS, DATASETS, DEFENSES, EXTRACTORS, MODELS, load_plugins
load_plugins()
names = {r.kind: r.names() for r in (MODELS, DATASETS, CORRUPTIONS, DEFENSES, EXTRACTORS)}
ds = DATASETS.create("synthetic", n_train=1, n_valid=1, n_test=1, min_utts=2, max_utts=2, seed=0)
test = ds.splits["test"]
for name in ("video-gaussian-blur", "audio-pink"):  # albumentations; transformers' mel filter bank
    CORRUPTIONS.create(name, device="cpu").bind(ds)(test, 2, 0)
DEFENSES.create("denoise-spectral", device="cpu").bind(ds)(test)  # noisereduce
import albumentations
print(json.dumps({"attempts": attempts, "names": names, "albumentations": albumentations.__version__}))
"""


def test_plugins_import_and_run_without_network():
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}  # our code must set it
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["attempts"] == [], f"network attempts at run time: {out['attempts']}"
    assert "Error fetching version info" not in res.stderr
    assert out["names"]["model"] and out["names"]["corruption"] and out["names"]["extractor"]
