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


# ------------------------------------------------------------------ failures never help a model
def test_a_failed_point_makes_mce_and_the_mean_aurc_nan():
    curves = {("a", "noise"): LINEAR, ("a", "blur"): [0.8, 0.75, 0.7, 0.65, 0.6, float("nan")],
              ("ref", "noise"): REF, ("ref", "blur"): REF}
    mce = mce_table(robustness_summary(_summary(curves), "wf1", reference="ref")).set_index("variant")
    assert np.isnan(mce.loc["a", "mce"]) and np.isnan(mce.loc["a", "relative_mce"]) and np.isnan(mce.loc["a", "mean_aurc"])
    assert mce.loc["a", "n_corruptions"] == 2 and mce.loc["a", "n_failed_corruptions"] == 1
    assert mce.loc["ref", "mce"] == pytest.approx(1.0) and mce.loc["ref", "n_failed_corruptions"] == 0


def _rows(scores: dict[tuple[str, int], list[float]], failed: set[tuple[str, int, int]] = frozenset()) -> pd.DataFrame:
    """Stored-result-like rows: per (model, severity) one wF1 per seed; ``failed`` (model, severity, seed)."""
    rows = []
    for (model, sev), values in scores.items():
        for seed, v in enumerate(values):
            bad = (model, sev, seed) in failed
            rows.append({"dataset": "synthetic", "variant": model, "model": model, "seed": seed, "defense": None,
                         "corruption": "clean" if sev == 0 else "noise", "severity": sev, "split": "test",
                         "cell_key": f"{model}-{sev}-{seed}", "status": "failed" if bad else "ok",
                         "metric_wf1": np.nan if bad else v, "parameter": "", "parameter_value": "",
                         "n_utterances": 100})
    return pd.DataFrame(rows)


def test_a_failed_seed_makes_its_curve_point_and_table_cell_nan():
    from reports.aggregate import curves
    from reports.main_table import clean_stats

    scores = {("a", 0): [0.80, 0.82, 0.81], ("a", 5): [0.50, 0.20, 0.55], ("b", 0): [0.70, 0.71, 0.72],
              ("b", 5): [0.60, 0.61, 0.62]}
    df = _rows(scores, failed={("a", 5, 1), ("b", 0, 2)})  # a's worst seed at severity 5 failed
    points = curves(df, "wf1").set_index(["variant", "corruption", "severity"])
    assert np.isnan(points.loc[("a", "noise", 5), "mean"]) and points.loc[("a", "noise", 5), "failed"] == 1
    assert points.loc[("a", "noise", 0), "mean"] == pytest.approx(0.81)
    cells = clean_stats(df, ["wf1"])
    assert np.isnan(cells["b", "wf1"].estimate) and cells["b", "wf1"].n_failed == 1
    assert cells["a", "wf1"].estimate == pytest.approx(0.81)
    rob = robustness_summary(curves(df, "wf1"), "wf1").set_index("variant")
    assert np.isnan(rob.loc["a", "aurc"])  # not the mean of the two seeds that survived


def test_flat_curves_tie_every_model_on_effective_robustness():
    """Flat curves at levels whose float sums leave rounding residues (0.1, 1/3, 0.7 ...)."""
    levels = [0.1, 1 / 3, 0.7, 0.62, 0.29, 0.8]
    curves = {(f"m{i}", "noise"): [v] * 6 for i, v in enumerate(levels)}
    rob = robustness_summary(_summary(curves), "wf1", reference="m0").set_index("variant")
    assert (rob["effective_robustness_raw"] == 0.0).all()
    assert (rob["effective_robustness"] == 1.0).all() and (rob["relative_robustness"] <= 1.0).all()
    # a tie within the stated tolerance is a tie; a real difference is not
    from reports.robustness import TIE_TOLERANCE

    assert minmax([0.5, 0.5 + TIE_TOLERANCE / 2]).tolist() == [1.0, 1.0]
    assert minmax([0.5, 0.5 + 1e-6]).tolist() == [0.0, 1.0]
