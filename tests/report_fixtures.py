"""Result stores written without training anything, for the report tests.

:func:`make_run` writes a run directory whose ``results.sqlite`` looks like one a sweep writes:
a ``runs`` row with config and provenance, one training record per (model, seed) with a
training history, and one result row per (model, seed, corruption, severity) with its stored
predictions, computed by the metric table from synthetic predictions whose quality falls with
severity.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness import registry
from harness.metrics import compute_metrics
from harness.store import ResultStore

CLASSES = ["neutral", "happy", "sad", "angry"]
CORRUPTIONS = {  # label -> (registered name, options, parameter, values at severities 1..5)
    "audio-white": ("audio-white", {}, "snr_db", ["20 dB", "15 dB", "10 dB", "5 dB", "0 dB"]),
    "video-occlusion": ("video-occlusion", {}, "occluded_side",
                        [f"{v} of frame side" for v in (0.15, 0.25, 0.35, 0.45, 0.6)]),
    "missing audio": ("feature-missing", {"modality": "audio"}, "missing_rate",
                      [f"{v} probability" for v in (0.1, 0.2, 0.3, 0.4, 0.5)]),
    "missing text": ("feature-missing", {"modality": "text"}, "missing_rate",
                     [f"{v} probability" for v in (0.1, 0.2, 0.3, 0.4, 0.5)]),
    "audio-white (spikes)": ("audio-white", {"schedule": "spikes"}, "snr_db",
                             ["20 dB", "15 dB", "10 dB", "5 dB", "0 dB"]),
}
DEMO_MODELS = ("mcer", *(f"mcer[{s}]" for s in ("denoiser=diff-dual", "denoiser=standard", "denoiser=none",
                                                 "graphs=intra", "graphs=inter", "graphs=unaware", "graphs=none",
                                                 "fusion=symmetric", "fusion=concat", "filter_gates=off",
                                                 "aux_loss=off", "logit_weights=equal")),
               "text-only", "audio-only", "early-fusion", "late-fusion", "tfn", "mult", "misa", "dialoguernn")
"""The demo's 21 model labels: the widest tables and most crowded figures a report draws."""


def _quality(variant: str, k: int) -> float:
    """A clean share of correct predictions per model label, fixed by its position."""
    return 0.85 - 0.03 * k if variant != "mcer" else 0.9


def make_run(out: Path, variants: Sequence[str] = ("mcer", "mcer[graphs=none]", "text-only", "late-fusion"),
             seeds: Sequence[int] = (0, 1), task: str = "classification", dataset: str = "synthetic",
             corruptions: Sequence[str] = ("audio-white", "missing audio"), severities: Sequence[int] = (1, 3, 5),
             n_utts: int = 80, corruption_seed: int = 0, code_version: str = "v1+src.abc",
             report: dict[str, Any] | None = None, fail: Sequence[tuple[str, int, str, int]] = (),
             seed: int = 0) -> Path:
    """Write ``out/results.sqlite`` (see the module doc) and return ``out``. ``fail`` lists
    ``(variant, seed, corruption, severity)`` cells stored as failed."""
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / "results.sqlite")
    rng = np.random.default_rng(seed)
    report = {"metric": "wf1" if task == "classification" else "mae", "full_model": "mcer",
              "reference": "text-only", **(report or {})}
    config = {"run": {"name": out.name, "seeds": list(seeds), "corruption_seed": corruption_seed},
              "models": [{"name": v} for v in variants], "datasets": [{"name": dataset}],
              "corruptions": [{"name": CORRUPTIONS[c][0], "label": c, "severities": list(severities)}
                              for c in corruptions], "report": report}
    provenance = {"code_version": code_version, "packages": {"python": "3.11", "torch": "2.13.0"}, "device": "cpu"}
    spec = {"dims": {"text": 8, "audio": 4, "video": 4}, "task": task, "num_speakers": 2,
            "num_classes": len(CLASSES) if task == "classification" else None,
            "class_names": CLASSES if task == "classification" else None,
            "score_range": None if task == "classification" else [-3.0, 3.0]}
    splits = {s: {"dialogues": n_utts // 8, "utterances": n_utts} for s in ("train", "valid", "test")}
    store.add_artifact("dataset_card", dataset, {"name": dataset, "spec": spec, "splits": splits},
                       "2026-01-01T00:00:00+00:00")
    store.add_run(f"run-{out.name}", config, "cfghash", provenance, "2026-01-01T00:00:00+00:00")
    uids = [f"d{i // 8}-u{i % 8}" for i in range(n_utts)]
    if task == "classification":
        y = rng.integers(0, len(CLASSES), n_utts)
    else:
        y = np.round(rng.uniform(-3, 3, n_utts) * 2) / 2
    for k, variant in enumerate(variants):
        model = "mcer" if variant.startswith("mcer") else variant
        for s in seeds:
            train_key = f"t-{variant}-{dataset}-{s}"
            q0 = _quality(variant, k) - 0.01 * s
            history = [{"epoch": e, "train_loss": 1.5 / e + 0.05 * s, "lr": 1e-3,
                        **({"valid_wf1": min(0.95, q0 - 0.3 / e), "valid_acc": min(0.95, q0 - 0.25 / e)}
                           if task == "classification" else {"valid_mae": 0.6 + 0.5 / e, "valid_corr": 0.7 - 0.3 / e})}
                       for e in range(1, 7)]
            store.add_training({"train_key": train_key, "model": model, "variant": variant, "dataset": dataset,
                                "train_condition": "clean", "seed": s, "status": "ok", "error": None,
                                "fit": {"best_epoch": 5, "history": history}, "checkpoint": None, "params": 1000,
                                "device": "cpu", "wall_time_s": 1.0, "created_at": "2026-01-01T00:00:00+00:00"})
            cells = [("clean", 0)] + [(c, sev) for c in corruptions for sev in severities]
            for corr, sev in cells:
                q = q0 - 0.06 * sev * (1.5 if "graphs" in variant else 1.0)
                right = rng.random(n_utts) < q
                if task == "classification":
                    pred = np.where(right, y, (y + 1 + rng.integers(0, len(CLASSES) - 1, n_utts)) % len(CLASSES))
                    outputs = np.eye(len(CLASSES), dtype=np.float32)[pred] + rng.normal(0, 0.01, (n_utts, len(CLASSES)))
                    metrics = compute_metrics(task, y, outputs, CLASSES)
                else:
                    outputs = (y + np.where(right, rng.normal(0, 0.4, n_utts), rng.normal(0, 1.6, n_utts))).astype(
                        np.float32)
                    metrics = compute_metrics(task, y, outputs)
                name, opts, parameter, values = CORRUPTIONS.get(corr, ("clean", {}, None, [None] * 5))
                title = None if corr == "clean" else registry.CORRUPTIONS.get(name).obj.display_title(corr, opts)
                failed = (variant, s, corr, sev) in set(fail)
                key = f"{variant}|{dataset}|{s}|{corr}|{sev}|{corruption_seed}"
                row = {"cell_key": key, "train_key": train_key, "model": model, "variant": variant,
                       "model_options": {}, "dataset": dataset, "train_condition": "clean", "seed": s,
                       "corruption": corr, "corruption_options": {"name": name, **opts}, "severity": sev,
                       "parameter": parameter, "parameter_value": values[sev - 1] if sev else None, "title": title,
                       "schedule": "stationary", "defense": "none", "split": "test",
                       "status": "failed" if failed else "ok", "error": "boom" if failed else None,
                       "metrics": {} if failed else metrics, "n_utterances": 0 if failed else n_utts,
                       "best_epoch": 5, "config_hash": "cfghash", "code_version": code_version,
                       "package_versions": {"torch": "2.13.0"}, "device": "cpu", "wall_time_s": 0.1,
                       "created_at": "2026-01-01T00:00:00+00:00"}
                preds = None if failed else {"uids": uids, "targets": y, "outputs": outputs}
                store.add_result(row, preds)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python tests/report_fixtures.py OUT``: demo-sized classification, MOSI-like regression
    and IEMOCAP-like runs under OUT, each with its report (what ``nox -s paper`` compiles)."""
    import sys

    from reports.build import build_report

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python tests/report_fixtures.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(args[0])
    everything = tuple(CORRUPTIONS)
    runs = [make_run(out / "classification", variants=DEMO_MODELS, corruptions=everything, n_utts=64),
            make_run(out / "mosi", variants=DEMO_MODELS, task="regression", dataset="mosi", corruptions=everything,
                     seeds=(0,), n_utts=64),
            make_run(out / "iemocap", variants=DEMO_MODELS[:1] + DEMO_MODELS[13:], dataset="iemocap",
                     corruptions=("audio-white",), seeds=(0, 1, 2), n_utts=64)]
    for run in runs:
        build_report(run, n_boot=200)
        print(run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
