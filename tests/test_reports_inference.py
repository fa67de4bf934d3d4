"""Intervals over training seeds and a shared test set (reports.inference): each part of the
variance, the degrees of freedom, failed seeds, dialogue resampling and what a run can detect."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from reports.inference import (
    CROSSED,
    DF_QUANTILE,
    NO_INTERVAL,
    SEEDS_ONLY,
    TEST_ONLY,
    cell_estimate,
    detectable_effect,
    difference_estimate,
    interval_df,
    resample_counts,
    resampled_scores,
    verdict,
    welch_df,
)


def _record(targets, predicted, n_classes=3, groups=None):
    rec = {"uids": [f"u{i}" for i in range(len(targets))], "targets": np.asarray(targets),
           "outputs": np.eye(n_classes)[np.asarray(predicted)]}
    if groups is not None:
        rec["groups"] = list(groups)
    return rec


def _acc(rec):
    return float((rec["outputs"].argmax(1) == rec["targets"]).mean())


def test_without_predictions_the_cell_interval_is_students_t_over_seeds():
    values = [0.61, 0.66, 0.58, 0.70]
    est = cell_estimate(values, "acc")
    lo, hi = sps.t.interval(0.95, 3, loc=np.mean(values), scale=sps.sem(values))
    assert est.method == SEEDS_ONLY and est.df == 3
    assert (est.ci_low, est.ci_high) == pytest.approx((lo, hi))


def test_identical_seeds_leave_only_the_test_set_variance():
    """Every seed predicts the same: no training scatter, and the interval is the test set's, whose
    variance for accuracy is p(1 - p) / M."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    pred = np.where(rng.random(400) < 0.7, y, (y + 1) % 3)
    recs = [_record(y, pred)] * 4
    est = cell_estimate([_acc(r) for r in recs], "acc", recs, n_boot=2000)
    p = _acc(recs[0])
    assert est.method == CROSSED and est.seed_var == 0 and math.isinf(est.df)
    assert est.se == pytest.approx(math.sqrt(p * (1 - p) / 400), rel=0.1)


def test_the_test_set_share_is_shared_only_when_seeds_agree_on_utterances():
    """Seeds that err on unrelated utterances share almost no test-set variance; seeds that err on the
    same utterances share it all."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 500)
    independent = [_record(y, np.where(rng.random(500) < 0.7, y, (y + 1) % 3)) for _ in range(5)]
    hard = rng.random(500) < 0.3
    shared = [_record(y, np.where(hard & (rng.random(500) < 0.95), (y + 1) % 3, y)) for _ in range(5)]
    est_ind = cell_estimate([_acc(r) for r in independent], "acc", independent, n_boot=2000)
    est_sh = cell_estimate([_acc(r) for r in shared], "acc", shared, n_boot=2000)
    assert est_ind.test_var < 0.15 * 0.21 / 500  # p(1-p)/M is 0.21/500: almost none of it is shared
    assert est_sh.test_var > 0.7 * 0.21 / 500


def test_a_difference_cancels_the_utterances_both_models_get_wrong():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    hard = rng.random(300) < 0.3
    a = [_record(y, np.where(hard, (y + 1) % 3, y)) for _ in range(3)]
    b = [_record(y, np.where(hard | (rng.random(300) < 0.02), (y + 1) % 3, y)) for _ in range(3)]
    est = difference_estimate([_acc(r) for r in a], [_acc(r) for r in b], "acc", a, b, n_boot=1000)
    alone = cell_estimate([_acc(r) for r in a], "acc", a, n_boot=1000)
    assert est.method == CROSSED and est.n_seeds == (3, 3)
    assert est.test_var < 0.2 * alone.test_var  # the shared hard utterances cancel in the difference
    assert est.estimate == pytest.approx(np.mean([_acc(r) for r in a]) - np.mean([_acc(r) for r in b]))


def test_degrees_of_freedom_take_the_seed_variance_at_its_upper_bound():
    assert welch_df(2.0, [(1.0, 3), (1.0, 3)]) == pytest.approx(4.0)  # two equal shares, 2 df each
    assert welch_df(2.0, [(2.0, 5)]) == pytest.approx(4.0)
    assert math.isinf(welch_df(1.0, []))
    # seeds alone: the bound cancels out, and the df are Student's K - 1
    assert interval_df(0.0, [(0.3, 4)]) == pytest.approx(3.0)
    # with a test-set share, the seed share enters at s2 (K - 1) / chi2_{1/3}(K - 1): fewer df than plain Welch
    up = 1.0 * 2 / sps.chi2.ppf(DF_QUANTILE, 2)
    assert interval_df(1.0, [(1.0, 3)]) == pytest.approx((up + 1.0) ** 2 / (up ** 2 / 2))
    assert interval_df(1.0, [(1.0, 3)]) < welch_df(2.0, [(1.0, 3)])
    est = difference_estimate([0.5, 0.6, 0.7], [0.4, 0.5, 0.45, 0.55, 0.5], "acc")
    va, vb = np.var([0.5, 0.6, 0.7], ddof=1) / 3, np.var([0.4, 0.5, 0.45, 0.55, 0.5], ddof=1) / 5
    ua, ub = va * 2 / sps.chi2.ppf(DF_QUANTILE, 2), vb * 4 / sps.chi2.ppf(DF_QUANTILE, 4)
    assert est.df == pytest.approx((ua + ub) ** 2 / (ua ** 2 / 2 + ub ** 2 / 4))
    assert est.estimate == pytest.approx(0.6 - 0.48)
    assert est.p == pytest.approx(2 * sps.t.sf(0.12 / math.sqrt(va + vb), est.df))


def test_a_failed_seed_makes_the_cell_and_the_difference_nan():
    assert math.isnan(cell_estimate([0.6, float("nan"), 0.7], "acc").estimate)
    est = difference_estimate([0.6, 0.7, 0.65], [0.5, float("nan")], "acc")
    assert math.isnan(est.estimate) and verdict(est, "a") == "not estimated"


def test_one_seed_gives_the_test_set_interval_and_says_so():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 200)
    rec = _record(y, np.where(rng.random(200) < 0.6, y, (y + 2) % 3))
    est = cell_estimate([_acc(rec)], "acc", [rec])
    assert est.method == TEST_ONLY and est.ci_low < _acc(rec) < est.ci_high
    assert cell_estimate([0.6], "acc").method == NO_INTERVAL


def test_dialogues_are_resampled_whole_when_their_ids_are_stored():
    groups = np.repeat(np.arange(5), [3, 1, 4, 2, 2])
    rng = np.random.default_rng(4)
    counts = resample_counts(len(groups), groups, 20, rng)
    for row in counts:  # every drawn dialogue comes with all its utterances, as often as it was drawn
        for g in range(5):
            assert len(set(row[groups == g])) == 1
        assert row[np.r_[0, 3, 4, 8, 10]].sum() == 5  # five dialogues drawn (one utterance of each counted)
    y = rng.integers(0, 3, 12)
    recs = [_record(y, y, groups=[f"d{g}" for g in groups]), _record(y, (y + 1) % 3, groups=[f"d{g}" for g in groups])]
    assert cell_estimate([1.0, 0.0], "acc", recs).resampled == "dialogues"
    recs[1].pop("groups")
    assert cell_estimate([1.0, 0.0], "acc", recs).resampled == "utterances"


@pytest.mark.parametrize("dialogues", [False, True])
@pytest.mark.parametrize("metric", ["acc", "wf1", "mf1"])
def test_confusion_counts_score_resamples_as_scoring_the_resampled_utterances_does(metric, dialogues):
    """The fast path (multiplicities x one-hot confusion cells) against the metric itself on
    the resampled utterances, for the same draws."""
    from harness.metrics import score_rows

    rng = np.random.default_rng(11)
    groups = np.repeat(np.arange(9), rng.integers(1, 6, 9)) if dialogues else None
    m, nc = (len(groups) if dialogues else 40), 4
    y, preds = rng.integers(0, nc, m), rng.integers(0, nc, (3, m))
    counts = resample_counts(m, groups, 50, np.random.default_rng(2))
    if not dialogues:
        assert (counts.sum(1) == m).all()
    indices = [np.repeat(np.arange(m), c) for c in counts]
    fast = resampled_scores(metric, y, preds, nc, counts)
    direct = np.array([[score_rows(metric, y[ix][None], p[ix][None], nc)[0] for p in preds] for ix in indices])
    np.testing.assert_allclose(fast, direct, rtol=0, atol=1e-12)


def test_detectable_effect_and_seeds_to_detect():
    assert detectable_effect(1.0, float("inf")) == pytest.approx(sps.norm.ppf(0.975) + sps.norm.ppf(0.8))
    assert detectable_effect(2.0, 4) == pytest.approx(2 * (sps.t.ppf(0.975, 4) + sps.t.ppf(0.8, 4)))
    est = difference_estimate([0.60, 0.66, 0.63], [0.58, 0.61, 0.62], "acc")
    need = est.seeds_to_detect()
    assert need is not None and need > 3
    # at that many seeds (same scatter), the observed difference is just detectable
    per = est.seed_var_per_seed
    se = math.sqrt(per[0] / need + per[1] / need)
    assert detectable_effect(se, interval_df(0.0, [(per[0] / need, need), (per[1] / need, need)])) <= abs(est.estimate)
    # a test-set variance larger than the effect itself: more seeds cannot help
    est.test_var = (abs(est.estimate) / 2) ** 2
    assert est.seeds_to_detect() is None


def test_verdicts_never_call_an_unshown_difference_a_tie():
    shown = difference_estimate([0.8, 0.82, 0.81], [0.6, 0.61, 0.62], "acc")
    assert verdict(shown, "a") == "a better" and verdict(shown, "a", higher_is_better=False) == "a worse"
    unclear = difference_estimate([0.6, 0.7, 0.65], [0.62, 0.66, 0.6], "acc")
    assert verdict(unclear, "a") == "no difference shown"


@pytest.mark.slow
def test_coverage_study_covers_at_three_seeds_where_the_previous_interval_did_not():
    """A small run of benchmarks/coverage_study.py (the full table is in docs/METRICS.md)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import coverage_study

    row = coverage_study.run_config(3, 0.04, False, replicates=150, n_boot=300, seed=7)
    assert row["coverage_cell"] >= 0.88 and row["coverage_diff"] >= 0.88
    assert row["coverage_cell_old"] < row["coverage_cell"] and row["coverage_diff_old"] < row["coverage_diff"]
