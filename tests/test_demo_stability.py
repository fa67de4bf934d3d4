"""The demo's verdicts hold on a fresh run, on two arithmetic paths.

The demo (``mcer-bench run``, the built-in config) runs here twice, from scratch, each in a
fresh process:

* **portable** -- as the README's numbers were made: ``[run] arithmetic = "portable"``
  (PyTorch's AVX2 kernels, MKL's reproducible AVX2 path, oneDNN capped at AVX2, one thread
  per worker). On any x86-64 processor with AVX2 this should reproduce ``docs/demo/summary.json`` bit
  for bit; whether it does on the processor CI has that day is printed, not required.
* **native** -- this processor's own kernels (AVX-512 or AVX2 where it has them), the path a
  user who does not ask for the portable mode takes. Its trainings follow another
  floating-point path from their first steps, as they would on another machine.

For each path, against the committed summary: every verdict the README quotes must come out
the same (this is CI's check that the README still describes the code as it stands); at most
10% of all the summary's verdicts may change significance (shown <-> not shown); and no
difference shown in both may change sign. The counts are printed for the record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from readme_claims import ROOT, quoted_comparisons, verdict_mismatches

from harness.store import ResultStore
from reports.summary import compare_summaries, run_summary

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

COMMITTED = json.loads((ROOT / "docs" / "demo" / "summary.json").read_text())
PATHS = {"portable": [], "native": ["--set", 'run.arithmetic="native"']}
MAX_CHANGED = 0.10


def _demo(out, extra: list[str]) -> tuple[dict, dict]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    cmd = [sys.executable, "-m", "harness", "run", "--out", str(out), "--no-report",
           "--set", "deployment.enabled=false", *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1700, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = run_summary(out, "mcer")
    trainings = ResultStore(out / "results.sqlite", read_only=True).dataframe("trainings")
    losses = {(r.variant, r.seed): [h["train_loss"] for h in json.loads(r.fit)["history"]]
              for r in trainings.itertuples()}
    return summary, losses


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-stability")
    out = {}
    for path, extra in PATHS.items():
        summary, losses = _demo(root / path, extra)
        changes = compare_summaries(COMMITTED, summary)
        print(f"{path}: {len(changes['changed'])} of {changes['total']} verdicts changed significance, "
              f"{len(changes['sign_flips'])} significant sign flips; {changes['cells_moved']} of {changes['cells']} "
              f"headline cells moved (largest {changes['max_cell_shift'] * 100:.1f} points); devices "
              f"{summary['provenance']['devices']}")
        for line in changes["changed"] + changes["sign_flips"]:
            print("   ", line)
        out[path] = (summary, losses, changes)
    return out


@pytest.mark.parametrize("path", list(PATHS))
def test_a_fresh_demo_gives_every_verdict_the_readme_quotes(runs, path):
    summary, _, _ = runs[path]
    assert verdict_mismatches(summary, quoted_comparisons()) == []


@pytest.mark.parametrize("path", list(PATHS))
def test_at_most_a_tenth_of_the_summarys_verdicts_change_significance(runs, path):
    _, _, changes = runs[path]
    assert changes["total"] == len(COMMITTED["comparisons"])
    assert len(changes["changed"]) <= MAX_CHANGED * changes["total"], changes["changed"]


@pytest.mark.parametrize("path", list(PATHS))
def test_no_difference_shown_on_both_runs_changes_sign(runs, path):
    _, _, changes = runs[path]
    assert changes["sign_flips"] == []


def test_the_native_path_trained_along_another_floating_point_path(runs):
    """Otherwise its agreement would prove nothing."""
    (_, losses_p, _), (_, losses_n, _) = runs["portable"], runs["native"]
    assert losses_p.keys() == losses_n.keys()
    differ = [k for k in losses_p if losses_p[k] != losses_n[k]]
    print(f"{len(differ)} of {len(losses_p)} trainings took another floating-point path on the native kernels")
    assert differ, "the native run repeated the portable one bit for bit: it tested nothing"
