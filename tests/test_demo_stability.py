"""The demo's conclusions hold under another torch thread count (the stand-in, on one machine,
for "another machine": a different number of threads sums floats in a different order, so
every training follows a slightly different path).

A reduced demo (MCER, two of its variants and two unimodal baselines, 3 seeds) runs twice, with
1 and with 2 torch threads. Every ablation delta marked significant in one run must have the
same sign in the other, and models whose clean intervals do not overlap must rank the same way
in both. The reduced demo must mark at least one delta significant, or the test proves nothing.
"""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
import torch

from harness.run.config import parse_config
from harness.run.driver import run_sweep
from harness.store import ResultStore
from reports.ablation_table import ablation_rows
from reports.main_table import clean_stats

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # two sweeps of 15 trainings each

MCER = {"hidden": 32, "heads": 4, "dropout": 0.1}
REDUCED_DEMO = {
    "run": {"name": "reduced-demo", "seeds": [0, 1, 2]},
    "train": {"epochs": 8, "patience": 8, "lr": 2e-3, "lr_schedule": "cosine", "dialogue_batch_size": 4},
    "models": [
        {"name": "mcer", "options": MCER},
        {"name": "mcer", "label": "mcer[graphs=none]", "options": {**MCER, "graphs": "none"}},
        {"name": "mcer", "label": "mcer[logit_weights=text-only]", "options": {**MCER, "logit_weights": [1.0, 0.0, 0.0]}},
        {"name": "text-only"},
        {"name": "audio-only"},
    ],
    "datasets": [{"name": "synthetic", "options": {"n_train": 24, "n_valid": 12, "n_test": 24, "keep_raw": False}}],
    "corruptions": [{"name": "feature-missing", "label": "missing audio", "severities": [5],
                     "options": {"modality": "audio"}}],
    "report": {"full_model": "mcer"},
    "deployment": {"enabled": False},
}


def _run(out, threads: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        run_sweep(parse_config(REDUCED_DEMO), out, raw_config=REDUCED_DEMO, progress=False, log=lambda _m: None)
    finally:
        torch.set_num_threads(before)
    store = ResultStore(out / "results.sqlite", read_only=True)
    df = store.dataframe()
    ok = df[df["status"] == "ok"]
    variants = [v for v in ok["variant"].unique() if v.startswith("mcer[")]
    ablation = ablation_rows(ok, "wf1", full="mcer", variants=variants, predictions=store.predictions,
                             corruption="missing audio")
    stats = clean_stats(ok, ["wf1"], predictions=store.predictions)
    clean = pd.DataFrame([{"variant": v, "mean": s.mean, "low": s.ci_low, "high": s.ci_high}
                          for (v, _), s in stats.items()]).set_index("variant")
    return ablation, clean


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("stability")
    return _run(root / "one-thread", 1), _run(root / "two-threads", 2)


def test_the_two_runs_really_differ(two_runs):
    (_, clean_1), (_, clean_2) = two_runs
    assert not clean_1["mean"].equals(clean_2["mean"]), "same numbers: the thread count changed nothing to test"


def test_significant_ablation_deltas_keep_their_sign(two_runs):
    (abl_1, _), (abl_2, _) = two_runs
    marked = 0
    for this, other in ((abl_1, abl_2), (abl_2, abl_1)):
        merged = this.merge(other, on=["variant", "setting"], suffixes=("", "_other"))
        for r in merged[merged["significant"]].itertuples():
            marked += 1
            assert (r.delta > 0) == (r.delta_other > 0), (
                f"{r.variant} ({r.setting}): Δ {r.delta:+.3f} marked significant in one run, {r.delta_other:+.3f} "
                f"in the other")
    assert marked >= 1, "the reduced demo marked no delta significant: it would prove nothing"


def test_rankings_of_models_with_separate_intervals_agree(two_runs):
    (_, clean_1), (_, clean_2) = two_runs
    checked = 0
    for this, other in ((clean_1, clean_2), (clean_2, clean_1)):
        for a, b in itertools.permutations(this.index, 2):
            if this.loc[a, "low"] > this.loc[b, "high"]:  # a clearly above b in this run
                checked += 1
                assert other.loc[a, "mean"] > other.loc[b, "mean"], (
                    f"{a} ranked above {b} with separate intervals in one run, not in the other")
    assert checked >= 1, "no two models had separate intervals: the ranking check proved nothing"
