"""A third-party package registers a model through the ``mcer_bench.plugins`` entry point."""

import json
import os
import subprocess
import sys
import textwrap


def test_entry_point_plugin_appears_in_list(tmp_path):
    pkg = tmp_path / "thirdparty_mcer_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        from harness import MODELS
        from baselines.unimodal import TextOnly

        @MODELS.register("thirdparty-text", level="utterance")
        class ThirdPartyText(TextOnly):
            """A model shipped by another package."""
    '''))
    dist = tmp_path / "thirdparty_mcer_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-mcer-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mcer_bench.plugins]\nthirdparty = thirdparty_mcer_plugin\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "harness", "list", "models", "--json"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    names = {e["name"]: e for e in json.loads(out.stdout)["models"]}
    assert "thirdparty-text" in names
    assert names["thirdparty-text"]["module"] == "thirdparty_mcer_plugin"
    assert "text-only" in names
