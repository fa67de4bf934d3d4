"""Robustness summaries on hand-made curves with hand-computed answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports.robustness import aurc, mce_table, minmax, rel_drop, robustness_summary


def _summary(curves: dict[tuple[str, str], list[float]], dataset: str = "synthetic") -> pd.DataFrame:
    rows = []
    for (model, corr), values in curves.items():
        for s, v in enumerate(values):
            rows.append({"dataset": dataset, "variant": model, "corruption": corr, "defense": "none",
                         "severity": s, "mean": v, "std": 0.0})
    return pd.DataFrame(rows)


FLAT = [0.8] * 6
LINEAR = [0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
REF = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]


def test_aurc_and_rel_drop_by_hand():
    assert aurc(FLAT) == pytest.approx(0.8)
    # trapezoid of a straight line = mean of end points
    assert aurc(LINEAR) == pytest.approx(0.55)
    assert aurc([1.0, 0.0, 1.0, 0.0, 1.0, 0.0]) == pytest.approx(0.5)
    assert aurc([0.8, 0.4, 0.0], severities=[0, 1, 5]) == pytest.approx((0.6 * 1 + 0.2 * 4) / 5)
    assert np.isnan(aurc([0.8, float("nan"), 0.6]))
    assert rel_drop(0.8, 0.3) == pytest.approx(0.625)
    with pytest.raises(ValueError, match="strictly increasing"):
        aurc([1, 2], severities=[1, 1])
    assert minmax([2.0, 4.0, 3.0]).tolist() == [0.0, 1.0, 0.5]
    assert minmax([1.0, 1.0]).tolist() == [1.0, 1.0]


def test_summary_relative_effective_and_ce():
    df = _summary({("flat", "noise"): FLAT, ("linear", "noise"): LINEAR, ("ref", "noise"): REF})
    rob = robustness_summary(df, "wf1", reference="ref").set_index("variant")
    assert rob.loc["flat", "aurc"] == pytest.approx(0.8)
    assert rob.loc["linear", "rel_drop_5"] == pytest.approx(0.625)
    assert rob.loc["flat", "rel_drop_3"] == pytest.approx(0.0)
    # aurc: flat .8, linear .55, ref .65 -> minmax
    assert rob.loc["flat", "relative_robustness"] == pytest.approx(1.0)
    assert rob.loc["linear", "relative_robustness"] == pytest.approx(0.0)
    assert rob.loc["ref", "relative_robustness"] == pytest.approx(0.4)
    # effective robustness: flat keeps 0.1*s more than ref shifted -> sum 0.1*(0+..+5) = 1.5
    assert rob.loc["flat", "effective_robustness_raw"] == pytest.approx(1.5)
    assert rob.loc["linear", "effective_robustness_raw"] == pytest.approx(0.0)
    assert rob.loc["ref", "effective_robustness_raw"] == pytest.approx(0.0)
    assert rob.loc["flat", "effective_robustness"] == pytest.approx(1.0)
    assert rob.loc["linear", "effective_robustness"] == pytest.approx(0.0)
    # CE: E_flat s=1..5 = 0.2*5 = 1.0; E_ref = .2+.3+.4+.5+.6 = 2.0 -> 0.5
    assert rob.loc["flat", "ce"] == pytest.approx(0.5)
    assert rob.loc["ref", "ce"] == pytest.approx(1.0)
    # linear: E = .3+.4+.5+.6+.7 = 2.5 -> 1.25 ; relative: (2.5 - 5*.2) / (2.0 - 5*.1) = 1.0
    assert rob.loc["linear", "ce"] == pytest.approx(1.25)
    assert rob.loc["linear", "relative_ce"] == pytest.approx(1.0)
    assert rob.loc["flat", "relative_ce"] == pytest.approx(0.0)


def test_mae_is_used_as_it_is_and_mce_averages_corruptions():
    """MAE: no mapping. AURC and m0 are MAE values, the error E is MAE itself, the drop is the
    relative growth of the error, and lower AURC means more robust."""
    mae = {("a", "c1"): [0.6] * 6, ("a", "c2"): [0.6, 0.9, 1.2, 1.5, 1.8, 2.1],
           ("ref", "c1"): [0.6, 0.9, 1.2, 1.5, 1.8, 2.1], ("ref", "c2"): [0.6, 0.9, 1.2, 1.5, 1.8, 2.1]}
    rob = robustness_summary(_summary(mae), "mae", reference="ref")
    a1 = rob[(rob.variant == "a") & (rob.corruption == "c1")].iloc[0]
    r1 = rob[(rob.variant == "ref") & (rob.corruption == "c1")].iloc[0]
    assert a1["m0"] == pytest.approx(0.6) and a1["aurc"] == pytest.approx(0.6)
    assert r1["aurc"] == pytest.approx(1.35)  # straight line 0.6 -> 2.1: mean of the end points
    assert r1["rel_drop_5"] == pytest.approx((2.1 - 0.6) / 0.6)  # error grew by 250 %: positive = worse
    assert a1["rel_drop_5"] == pytest.approx(0.0)
    # E = MAE: a/c1 sum 5 * 0.6 = 3.0; ref sum 0.9 + 1.2 + 1.5 + 1.8 + 2.1 = 7.5 -> 0.4
    assert a1["ce"] == pytest.approx(0.4)
    assert a1["relative_ce"] == pytest.approx(0.0)  # no error added by the corruption
    # lower AURC is more robust: a (0.6) gets 1, ref (1.35) gets 0
    assert a1["relative_robustness"] == pytest.approx(1.0) and r1["relative_robustness"] == pytest.approx(0.0)
    # a keeps its MAE where the reference's grows by 0.3 per severity: sum 0.3 * (0+..+5) = 4.5 more robust
    assert a1["effective_robustness_raw"] == pytest.approx(4.5)
    mce = mce_table(rob).set_index("variant")
    assert mce.loc["a", "mce"] == pytest.approx((0.4 + 1.0) / 2)
    assert mce.loc["ref", "mce"] == pytest.approx(1.0)
    assert mce.loc["a", "n_corruptions"] == 2


def test_rel_drop_direction():
    assert rel_drop(0.8, 0.6) == pytest.approx(0.25)  # 25 % of the clean score lost
    assert rel_drop(0.5, 0.75, higher_is_better=False) == pytest.approx(0.5)  # error grew by half
    assert rel_drop(0.5, 0.25, higher_is_better=False) == pytest.approx(-0.5)  # a gain is negative
    assert np.isnan(rel_drop(0.0, 0.1))


def test_bad_inputs_raise():
    df = _summary({("a", "c"): FLAT})
    with pytest.raises(ValueError, match="reference model 'zzz'"):
        robustness_summary(df, "wf1", reference="zzz")
    with pytest.raises(ValueError, match="lacks columns"):
        robustness_summary(df.drop(columns=["mean"]), "wf1")
    with pytest.raises(ValueError, match="defense 'x'"):
        robustness_summary(df, "wf1", defense="x")
    with pytest.raises(ValueError, match="reference"):
        mce_table(robustness_summary(df, "wf1"))
