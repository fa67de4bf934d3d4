"""Paired statistics, seed summaries and Holm's correction on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from reports.stats import align, holm, paired_bootstrap, paired_permutation


def _logits(pred: np.ndarray, n_classes: int = 4) -> np.ndarray:
    out = np.zeros((len(pred), n_classes), dtype=np.float32)
    out[np.arange(len(pred)), pred] = 1.0
    return out


def _records(seed: int = 0, m: int = 200):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, m)
    uids = [f"u{i}" for i in range(m)]
    good = y.copy()
    flip = rng.random(m) < 0.1
    good[flip] = (y[flip] + 2) % 4
    bad = y.copy()
    wrong = rng.random(m) < 0.6
    bad[wrong] = (y[wrong] + 1) % 4
    return y, uids, good, bad


def test_identical_predictions_give_zero_effect_and_p_one():
    y, uids, good, _ = _records()
    a = {"uids": uids, "targets": y, "outputs": _logits(good)}
    b = {"uids": list(reversed(uids)), "targets": y[::-1], "outputs": _logits(good)[::-1]}
    for metric in ("acc", "wf1", "mf1"):
        bs = paired_bootstrap(a, b, metric, n_boot=300)
        assert bs["effect"] == 0.0 and bs["ci_low"] == 0.0 and bs["ci_high"] == 0.0
        assert bs["p"] == 1.0
        pm = paired_permutation(a, b, metric, n_perm=300)
        assert pm["effect"] == 0.0 and pm["p"] == 1.0


def test_clearly_better_model_is_significant_and_effect_is_exact():
    y, uids, good, bad = _records()
    a = {"uids": uids, "targets": y, "outputs": _logits(good)}
    b = {"uids": uids, "targets": y, "outputs": _logits(bad)}
    bs = paired_bootstrap(a, b, "acc", n_boot=500)
    assert bs["effect"] == pytest.approx((good == y).mean() - (bad == y).mean())
    assert bs["effect"] > 0.3
    assert bs["ci_low"] > 0 and bs["ci_low"] <= bs["effect"] <= bs["ci_high"]
    assert bs["p"] < 0.05
    pm = paired_permutation(a, b, "wf1", n_perm=500)
    assert pm["p"] < 0.05 and pm["effect"] > 0
    # reversed order flips the sign
    assert paired_bootstrap(b, a, "acc", n_boot=100)["effect"] == pytest.approx(-bs["effect"])


def test_wf1_matches_sklearn():
    from sklearn.metrics import f1_score

    y, uids, good, bad = _records(3, 120)
    a = {"uids": uids, "targets": y, "outputs": _logits(bad)}
    b = {"uids": uids, "targets": y, "outputs": _logits(y)}
    res = paired_bootstrap(a, b, "wf1", n_boot=10)
    want = f1_score(y, bad, labels=range(4), average="weighted", zero_division=0) - 1.0
    assert res["effect"] == pytest.approx(want)
    res = paired_bootstrap(a, b, "mf1", n_boot=10)
    want = f1_score(y, bad, labels=range(4), average="macro", zero_division=0) - 1.0
    assert res["effect"] == pytest.approx(want)


def test_regression_mae_paired():
    rng = np.random.default_rng(0)
    y = rng.uniform(-3, 3, 150)
    uids = [f"u{i}" for i in range(150)]
    a = {"uids": uids, "targets": y, "outputs": y + 0.1}
    b = {"uids": uids, "targets": y, "outputs": y + rng.normal(0, 1.0, 150)}
    res = paired_bootstrap(a, b, "mae", n_boot=400)
    assert res["effect"] == pytest.approx(0.1 - np.abs(b["outputs"] - y).mean())
    assert res["effect"] < 0 and res["p"] < 0.05 and res["higher_is_better"] is False


def test_mismatched_test_sets_and_bad_metric_raise():
    y, uids, good, _ = _records(m=20)
    a = {"uids": uids, "targets": y, "outputs": _logits(good)}
    b = {"uids": uids[:-1] + ["other"], "targets": y, "outputs": _logits(good)}
    with pytest.raises(ValueError, match="identical test set"):
        paired_bootstrap(a, b, "acc")
    with pytest.raises(ValueError, match="mae"):
        paired_bootstrap(a, a, "mae")
    with pytest.raises(ValueError, match="not supported"):
        paired_permutation(a, a, "bleu")
    c = {"uids": uids, "targets": (y + 1) % 4, "outputs": _logits(good)}
    with pytest.raises(ValueError, match="disagree on the target"):
        align(a, c)


def test_holm_matches_hand_computed_values():
    # sorted 0.01, 0.02, 0.03, 0.04 with k=4: 0.04, 0.06, 0.06 (monotone), 0.06 -> max(.06, .04)
    assert holm([0.01, 0.04, 0.03, 0.02]) == pytest.approx([0.04, 0.06, 0.06, 0.06])
    # 0.005*3=0.015, 0.01*2=0.02, 0.5*1=0.5
    assert holm([0.5, 0.005, 0.01]) == pytest.approx([0.5, 0.015, 0.02])
    # capped at 1, NaN ignored (k = 2)
    out = holm([0.6, float("nan"), 0.7])
    assert out[0] == pytest.approx(1.0) and np.isnan(out[1]) and out[2] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="p-values must lie"):
        holm([0.1, 1.5])
