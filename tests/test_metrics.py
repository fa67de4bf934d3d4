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
