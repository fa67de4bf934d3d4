"""Coverage of the intervals the reports print, on simulated benchmark runs with a known truth.

Not a benchmark of speed: it answers "does a 95% interval cover the true value 95% of the
time?" for the cell interval (a model's mean over seeds) and the comparison interval (the
difference of two models' means) of :mod:`reports.inference`, at the seed counts people run.

The simulated world (all numbers are parameters below):

* a population of test utterances; each has a true class (one of ``CLASSES``) and a difficulty
  ``z ~ N(0, 1)`` shared by every model (hard utterances are hard for all);
* model ``X`` trained with seed ``k`` answers utterance ``i`` correctly with probability
  ``Phi(alpha_X + beta_Xk + z_i + w_Xi)``, otherwise with a random wrong class:
  ``beta_Xk ~ N(0, tau²)`` is the training-seed effect, ``w_Xi ~ N(0, OMEGA²)`` the model's own
  strengths on particular utterances (shared by its seeds), and the coin flip the seed-specific
  noise of each prediction;
* ``tau`` is set so that a model's accuracy on an infinite test set varies between seeds with
  the standard deviation ``seed_sd`` (1 or 4 accuracy points);
* one test set of ``M`` utterances is drawn per replicate and shared by every seed of every
  model (the crossed design of a real run); optionally the test set comes as dialogues of
  ``DIALOGUE_LEN`` utterances that share a dialogue effect (``N(0, DIALOGUE_SD²)`` on ``z``).

The true accuracy of a model is then ``Phi(alpha / sqrt(1 + tau² + 1 + OMEGA² [+ DIALOGUE_SD²]))``
(the probit-normal identity), so coverage is counted against an exact truth. The previous
method (a percentile bootstrap resampling seeds, then utterances within each seed) is run on
the same replicates for comparison.

Usage: ``python benchmarks/coverage_study.py [--replicates 2000] [--out bench-results]``
(about 10 minutes at 2000 replicates on 2 cores). Prints a Markdown table and writes it as CSV.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.optimize import brentq

from harness.metrics import score_rows
from reports.inference import N_BOOT, cell_estimate, difference_estimate

M = 311                 # test utterances, as in the demo's test split
CLASSES = 6
OMEGA = 0.5             # SD of a model's own per-utterance strengths
ALPHA = {"A": 1.0, "B": 0.85}   # probit intercepts: A about 3.5 accuracy points above B
DIALOGUE_LEN, DIALOGUE_SD = 10, 0.7


def _tau(seed_sd: float, alpha: float, extra: float) -> float:
    """The probit SD of the seed effect that gives accuracies an SD of ``seed_sd`` over seeds."""
    b = np.random.default_rng(0).normal(size=200_000)
    scale = np.sqrt(1 + extra)
    return float(brentq(lambda t: np.std(sps.norm.cdf((alpha + t * b) / scale)) - seed_sd, 1e-5, 5.0))


def _record(y: np.ndarray, pred: np.ndarray, groups: np.ndarray | None) -> dict:
    outputs = np.eye(CLASSES)[pred]  # one-hot "logits": argmax gives the prediction
    rec = {"uids": [f"u{i}" for i in range(len(y))], "targets": y, "outputs": outputs}
    if groups is not None:
        rec["groups"] = [f"d{g}" for g in groups]
    return rec


def _old_two_level(records: list[dict], rng: np.random.Generator, n_boot: int) -> tuple[float, float]:
    """The previous cell interval: resample seeds, then each drawn seed's utterances."""
    k = len(records)
    picks = rng.integers(0, k, size=(n_boot, k))
    vals = np.empty((n_boot, k))
    for s, rec in enumerate(records):
        y, p = rec["targets"], rec["outputs"].argmax(1)
        slots = np.argwhere(picks == s)
        idx = rng.integers(0, len(y), size=(len(slots), len(y)))
        vals[slots[:, 0], slots[:, 1]] = score_rows("acc", y[idx], p[idx], CLASSES)
    return tuple(np.quantile(vals.mean(1), [0.025, 0.975]))


def _old_paired(ra: list[dict], rb: list[dict], rng: np.random.Generator, n_boot: int) -> tuple[float, float]:
    """The previous comparison interval: resample seed pairs, then utterances within each."""
    k = len(ra)
    slots = rng.integers(0, k, size=(n_boot, k))
    draws = np.empty((n_boot, k))
    for s in range(k):
        y, pa, pb = ra[s]["targets"], ra[s]["outputs"].argmax(1), rb[s]["outputs"].argmax(1)
        uses = np.argwhere(slots == s)
        idx = rng.integers(0, len(y), size=(len(uses), len(y)))
        draws[uses[:, 0], uses[:, 1]] = (score_rows("acc", y[idx], pa[idx], CLASSES)
                                         - score_rows("acc", y[idx], pb[idx], CLASSES))
    return tuple(np.quantile(draws.mean(1), [0.025, 0.975]))


def run_config(seeds: int, seed_sd: float, dialogues: bool, replicates: int, n_boot: int, seed: int) -> dict:
    """Coverage counts of one (seeds, seed noise, test-set structure) configuration."""
    extra = 1 + OMEGA ** 2 + (DIALOGUE_SD ** 2 if dialogues else 0.0)
    tau = _tau(seed_sd, ALPHA["A"], extra)
    truth = {x: float(sps.norm.cdf(a / np.sqrt(1 + tau ** 2 + extra))) for x, a in ALPHA.items()}
    rng = np.random.default_rng(seed)
    hits = {"cell": 0, "diff": 0, "cell_old": 0, "diff_old": 0, "cell_utt": 0, "diff_utt": 0}
    widths, detectable = [], []
    for _ in range(replicates):
        y = rng.integers(0, CLASSES, size=M)
        z = rng.normal(size=M)
        groups = None
        if dialogues:
            groups = np.arange(M) // DIALOGUE_LEN
            z = z + rng.normal(scale=DIALOGUE_SD, size=groups.max() + 1)[groups]
        recs = {}
        for x, a in ALPHA.items():
            w = rng.normal(scale=OMEGA, size=M)
            beta = rng.normal(scale=tau, size=seeds)
            correct = rng.random((seeds, M)) < sps.norm.cdf(a + beta[:, None] + z[None] + w[None])
            wrong = (y[None] + rng.integers(1, CLASSES, size=(seeds, M))) % CLASSES
            recs[x] = [_record(y, p, groups) for p in np.where(correct, y[None], wrong)]
        vals = {x: [score_rows("acc", r["targets"][None], r["outputs"].argmax(1)[None], CLASSES)[0] for r in recs[x]]
                for x in ALPHA}
        s = int(rng.integers(1 << 31))
        cell = cell_estimate(vals["A"], "acc", recs["A"], n_boot=n_boot, seed=s)
        diff = difference_estimate(vals["A"], vals["B"], "acc", recs["A"], recs["B"], n_boot=n_boot, seed=s)
        true_diff = truth["A"] - truth["B"]
        hits["cell"] += cell.ci_low <= truth["A"] <= cell.ci_high
        hits["diff"] += diff.ci_low <= true_diff <= diff.ci_high
        widths.append(diff.ci_high - diff.ci_low)
        detectable.append(diff.detectable())
        lo, hi = _old_two_level(recs["A"], rng, n_boot)
        hits["cell_old"] += lo <= truth["A"] <= hi
        lo, hi = _old_paired(recs["A"], recs["B"], rng, n_boot)
        hits["diff_old"] += lo <= true_diff <= hi
        if dialogues:  # the same intervals, resampling utterances as if they were independent
            flat = {x: [{k: v for k, v in r.items() if k != "groups"} for r in recs[x]] for x in ALPHA}
            c = cell_estimate(vals["A"], "acc", flat["A"], n_boot=n_boot, seed=s)
            d = difference_estimate(vals["A"], vals["B"], "acc", flat["A"], flat["B"], n_boot=n_boot, seed=s)
            hits["cell_utt"] += c.ci_low <= truth["A"] <= c.ci_high
            hits["diff_utt"] += d.ci_low <= true_diff <= d.ci_high
    out = {"seeds": seeds, "seed_sd_points": seed_sd * 100, "test_set": "dialogues" if dialogues else "utterances",
           "replicates": replicates, "true_diff_points": true_diff * 100,
           "median_ci_width_points": float(np.median(widths)) * 100,
           "median_detectable_points": float(np.nanmedian(detectable)) * 100}
    for key, n in hits.items():
        if dialogues or not key.endswith("_utt"):
            out[f"coverage_{key}"] = n / replicates
    return out


CONFIGS = [(k, sd, False) for sd in (0.04, 0.01) for k in (3, 5, 10)] + [(k, 0.04, True) for k in (3, 10)]


def study(replicates: int, n_boot: int = N_BOOT, workers: int = 2, configs=CONFIGS) -> pd.DataFrame:
    """Every configuration of ``configs`` (seeds, seed SD as a fraction, dialogue structure)."""
    jobs = [(k, sd, dlg, replicates, n_boot, 1000 + i) for i, (k, sd, dlg) in enumerate(configs)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            rows = list(pool.map(run_config, *zip(*jobs)))
    else:
        rows = [run_config(*j) for j in jobs]
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame) -> str:
    """The table docs/METRICS.md quotes."""
    lines = ["| seeds | seed SD (points) | test set | cell interval | comparison interval | previous cell | "
             "previous comparison | comparison, utterances resampled | median detectable Δ (points) |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in df.itertuples():
        utt = f"{r.coverage_diff_utt:.3f}" if r.test_set == "dialogues" else "–"
        lines.append(f"| {r.seeds} | {r.seed_sd_points:.0f} | {r.test_set} | {r.coverage_cell:.3f} | "
                     f"{r.coverage_diff:.3f} | {r.coverage_cell_old:.3f} | {r.coverage_diff_old:.3f} | {utt} | "
                     f"{r.median_detectable_points:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--n-boot", type=int, default=N_BOOT)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    df = study(args.replicates, args.n_boot, args.workers)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    df.to_csv(Path(args.out) / "coverage_study.csv", index=False)
    print(markdown(df))
    se = np.sqrt(0.95 * 0.05 / args.replicates)
    print(f"\n{args.replicates} replicates per row (binomial SE of a 0.95 coverage: {se:.3f}); M = {M} test "
          f"utterances, {CLASSES} classes, {args.n_boot} resamples; {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
