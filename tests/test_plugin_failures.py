"""A third-party plugin that raises after its decorator ran: reported once, unregistered whole,
and a sweep that names it is refused with the reason (also with worker processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

BROKEN = '''
from harness import CORRUPTIONS, MODELS
from baselines.unimodal import TextOnly
from corruptions.feature import FeatureGaussian


@MODELS.register("broken-text", level="utterance")
class BrokenText(TextOnly):
    """Registered, and then its module raises."""


@CORRUPTIONS.register("broken-noise", level="features")
class BrokenNoise(FeatureGaussian):
    """Registered in another registry before the failure."""

    name = "broken-noise"


raise RuntimeError("boom after register")
'''

SWEEP = """
[run]
name = "b"
executor = "{executor}"
workers = 1

[train]
epochs = 1

[[models]]
name = "{model}"
options = {{ hidden = 8 }}

[[datasets]]
name = "synthetic"
options = {{ n_train = 2, n_valid = 1, n_test = 1, min_utts = 2, max_utts = 3, keep_raw = false }}
"""


@pytest.fixture
def broken_env(tmp_path):
    pkg = tmp_path / "brokenplug"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(BROKEN))
    dist = tmp_path / "brokenplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mcer_bench.plugins]\nbroken = brokenplug\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "harness", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def test_broken_plugin_is_unregistered_whole_and_reported_once(broken_env):
    out = _cli(broken_env, "list", "--json")
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert "broken-text" not in {e["name"] for e in listed["models"]}
    assert "broken-noise" not in {e["name"] for e in listed["corruptions"]}
    assert "text-only" in {e["name"] for e in listed["models"]}
    assert out.stderr.count("failed to load") == 1
    assert "plugin 'broken' (brokenplug) failed to load and is not used: RuntimeError: boom after register" in out.stderr


def test_sweep_naming_a_broken_plugin_is_refused_with_the_reason(broken_env, tmp_path):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(executor="local", model="broken-text"))
    out = _cli(broken_env, "run", str(sweep), "--out", str(tmp_path / "out"), "--quiet")
    assert out.returncode == 2
    assert (f"mcer-bench: error: {sweep}: key 'models.0': model 'broken-text' is not available: it comes from "
            f"plugin 'broken', which failed to load and is not used (RuntimeError: boom after register)") in out.stderr
    assert not (tmp_path / "out").exists()
    described = _cli(broken_env, "describe", "broken-noise", "--kind", "corruptions")
    assert described.returncode == 2 and "comes from plugin 'broken'" in described.stderr


def test_worker_processes_do_not_import_the_broken_plugin_again(broken_env, tmp_path):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(executor="processes", model="text-only"))
    out = _cli(broken_env, "run", str(sweep), "--out", str(tmp_path / "out"), "--quiet", "--no-report")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("failed to load") == 1  # the driver's report; the worker skipped the package
    from harness.store import ResultStore

    assert set(ResultStore(tmp_path / "out" / "results.sqlite", read_only=True).dataframe()["status"]) == {"ok"}


def test_unknown_name_lists_the_failed_plugins(monkeypatch):
    from harness import MODELS, registry

    monkeypatch.setitem(registry.PLUGIN_FAILURES, "other", "ImportError: no module named x")
    with pytest.raises(registry.RegistryError, match=r"Plugin\(s\) that failed to load: other \(ImportError"):
        MODELS.get("no-such-model")
