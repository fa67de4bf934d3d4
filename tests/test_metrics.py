import math

import numpy as np
import pytest

from harness.metrics import classification_metrics, compute_metrics, regression_metrics


def test_classification_against_hand_computed_values():
    y = [0, 0, 1, 1, 2, 2]
    p = [0, 1, 1, 1, 2, 0]
    m = classification_metrics(y, p, ["a", "b", "c"])
    assert m["acc"] == pytest.approx(4 / 6)
    # per-class F1: a: P=1/2 R=1/2 -> .5 ; b: P=2/3 R=1 -> .8 ; c: P=1 R=1/2 -> 2/3
    assert m["f1_a"] == pytest.approx(0.5)
    assert m["f1_b"] == pytest.approx(0.8)
    assert m["f1_c"] == pytest.approx(2 / 3)
    assert m["mf1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["wf1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)  # equal supports: weighted == macro


def test_weighted_f1_uses_supports():
    m = classification_metrics([0, 0, 0, 1], [0, 0, 0, 0], ["a", "b"])
    # a: P=3/4 R=1 -> 6/7 with support 3; b: 0 with support 1
    assert m["wf1"] == pytest.approx(0.75 * 6 / 7)
    assert m["mf1"] == pytest.approx(0.5 * 6 / 7)


def test_regression_mmsa_conventions():
    y = np.array([-2.0, -0.4, 0.0, 0.6, 2.6])
    p = np.array([-1.6, 0.2, 0.0, 0.4, 3.4])
    m = regression_metrics(y, p)
    assert m["mae"] == pytest.approx(np.mean([0.4, 0.6, 0.0, 0.2, 0.8]))
    assert m["corr"] == pytest.approx(np.corrcoef(y, p)[0, 1])
    # has0: truth >=0 -> [F,F,T,T,T]; pred >=0 -> [F,T,T,T,T]: 4/5
    assert m["acc2_has0"] == pytest.approx(0.8)
    # non0: drop y==0; truth >0 -> [F,F,T,T]; pred >0 -> [F,T,T,T]: 3/4
    assert m["acc2_non0"] == pytest.approx(0.75)
    # acc7: round(clip(.,-3,3)): y -> [-2,-0,0,1,3], p -> [-2,0,0,0,3]: 4/5
    assert m["acc7"] == pytest.approx(0.8)
    # acc5: clip to [-2,2]: y -> [-2,-0,0,1,2], p -> [-2,0,0,0,2]: 4/5
    assert m["acc5"] == pytest.approx(0.8)
    assert 0 < m["f1_has0"] <= 1 and 0 < m["f1_non0"] <= 1


def test_non0_is_nan_when_all_labels_zero():
    m = regression_metrics([0.0, 0.0], [0.1, -0.2])
    assert math.isnan(m["acc2_non0"]) and math.isnan(m["corr"])


def test_compute_metrics_argmax_and_errors():
    logits = np.array([[2.0, 1.0], [0.0, 3.0]])
    assert compute_metrics("classification", np.array([0, 1]), logits, ["a", "b"])["acc"] == 1.0
    with pytest.raises(ValueError, match="no utterances"):
        classification_metrics([], [], ["a"])


# ------------------------------------------------------------------------------ CH-SIMS
# Worked out by hand from MMSA's SIMS rules: clip both to [-1, 1]; a value's class is the bin
# (lower, upper] it falls in, with edges 0 (Acc-2: 0 is negative), -0.1 / 0.1 (Acc-3) and
# -0.7 / -0.1 / 0.1 / 0.7 (Acc-5). Labels at 0, on every edge, predictions beyond +-1.
SIMS_Y = [0.0, 0.1, -0.1, 0.7, -0.7, 0.4, -0.4, 0.0]
SIMS_P = [0.0, 0.11, -0.1, 0.8, 1.5, -2.0, -0.05, 0.3]
# clipped predictions: [0.0, 0.11, -0.1, 0.8, 1.0, -1.0, -0.05, 0.3]
# Acc-2 classes  y: 0 1 0 1 0 1 0 0   p: 0 1 0 1 1 0 0 1  -> 5 of 8 agree
# Acc-3 classes  y: 1 1 0 2 0 2 0 1   p: 1 2 0 2 2 0 1 2  -> 3 of 8
# Acc-5 classes  y: 2 2 1 3 0 3 1 2   p: 2 3 1 4 4 0 2 3  -> 2 of 8
# weighted F1 of the Acc-2 classes: class 0 (support 5): TP 3, 4 predicted -> 6/9;
# class 1 (support 3): TP 2, 4 predicted -> 4/7; (5 * 6/9 + 3 * 4/7) / 8 = 106/168
# |clipped p - y|: 0, .01, 0, .1, 1.7, 1.4, .35, .3 -> 3.86 / 8; unclipped: 5.36 / 8


def test_sims_metric_set_follows_mmsas_sims_rules():
    m = regression_metrics(SIMS_Y, SIMS_P, metric_set="sims")
    assert set(m) == {"mae", "sims_acc2", "sims_f1", "sims_acc3", "sims_acc5", "sims_mae", "sims_corr"}
    assert m["sims_acc2"] == pytest.approx(5 / 8)
    assert m["sims_acc3"] == pytest.approx(3 / 8)
    assert m["sims_acc5"] == pytest.approx(2 / 8)
    assert m["sims_f1"] == pytest.approx(106 / 168)
    assert m["sims_mae"] == pytest.approx(3.86 / 8)
    assert m["mae"] == pytest.approx(5.36 / 8)  # the raw L1 loss, MMSA's SIMS selection criterion
    clipped = np.clip(SIMS_P, -1, 1)
    yc, pc = np.asarray(SIMS_Y) - np.mean(SIMS_Y), clipped - clipped.mean()
    assert m["sims_corr"] == pytest.approx((yc * pc).sum() / np.sqrt((yc ** 2).sum() * (pc ** 2).sum()))


def test_sims_bins_take_float32_edges_as_mmsa_does():
    from harness.metrics import sims_classes

    edge = float(np.float32(0.1))  # a float32 output of 0.1 read as float64: 0.10000000149...
    assert sims_classes(np.array([edge, -float(np.float32(0.1)), 0.1000001]), 3).tolist() == [1, 0, 2]
    assert sims_classes(np.array([-0.7, -0.69999, 0.7, 0.70001, 5.0, -5.0]), 5).tolist() == [0, 1, 3, 4, 4, 0]


def test_sims_datasets_are_scored_with_the_sims_set_and_mosi_with_its_own():
    from harness.data import DataSpec

    assert "acc7" in regression_metrics(SIMS_Y, SIMS_P) and "sims_acc3" not in regression_metrics(SIMS_Y, SIMS_P)
    spec = DataSpec(dims={"text": 4}, task="regression", score_range=(-1.0, 1.0), metric_set="sims")
    assert spec.to_dict()["metric_set"] == "sims"
    assert "sims_acc5" in compute_metrics(spec.task, np.array(SIMS_Y), np.array(SIMS_P), None, spec.metric_set)
    with pytest.raises(ValueError, match="metric_set"):
        DataSpec(dims={"text": 4}, task="classification", num_classes=3, metric_set="sims")
    with pytest.raises(ValueError, match="metric_set"):
        DataSpec(dims={"text": 4}, task="regression", metric_set="chsims")


# ------------------------------------------------------------------------------ Corr
@pytest.mark.parametrize("constant", [[0.1] * 7, [1 / 3] * 11, [-2.7] * 5, [0.0] * 3])
def test_corr_is_nan_when_either_input_is_constant(constant):
    other = np.linspace(-1, 1, len(constant))
    assert math.isnan(regression_metrics(constant, other)["corr"])
    assert math.isnan(regression_metrics(other, constant)["corr"])


def test_corr_never_leaves_minus_one_to_one():
    from harness.metrics import score_rows

    rng = np.random.default_rng(0)
    values = []
    for i in range(1000):
        n = int(rng.integers(2, 40))
        y = rng.normal(size=n) * 10 ** rng.uniform(-3, 3)
        kind = i % 3  # exact linear relations, near-linear ones, and unrelated ones
        p = (rng.normal() * y + rng.normal() if kind == 0 else y + 1e-9 * rng.normal(size=n) if kind == 1
             else rng.normal(size=n))
        values.append(score_rows("corr", y[None], p[None])[0])
    values = np.asarray(values)
    assert np.all(np.abs(values[~np.isnan(values)]) <= 1.0)
    assert np.isnan(values).sum() == 0
