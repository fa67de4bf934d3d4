"""After the grid: what a report needs besides the result rows, stored in the run directory.

* ``dataset_card`` artifacts: each dataset's card (``harness.datasets.detect.dataset_card``).
* ``deployment`` artifacts: one deployment profile per model label and dataset
  (``harness.profile.deployment_profile``), measured on the checkpoint of the first seed
  trained on clean data, after every training has finished, so no training competes with the
  timing. Stored under ``"<label>|<dataset>|<device>"``; a resumed run measures only what is missing.
* ``pipeline`` artifacts: for datasets whose raw media come from files, one end-to-end profile
  (decode -> corrupt -> extract -> model, ``harness.pipeline_profile``) per model label and
  dataset, on the same checkpoints, under the sweep's first raw-media corruption at its
  highest severity. Stored under the same keys as the deployment profiles.
* ``feature_cache`` artifact ``summary``: the sweep's extraction cache, its size and how many
  extractions it ran per extractor (clean and corrupted).
* ``figures/gallery_<dataset>.{png,pdf}``: the sweep's raw-media corruptions at severities 0..5
  on one test utterance (needs the dataset's raw media; drawn once).

Everything here is best effort for one item at a time: a model whose training failed is
skipped with the reason (it has no checkpoint to profile); one whose checkpoint is missing or
fails to load gets a ``deployment`` record with ``status = "failed"`` and the reason, which the
report shows, and the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from harness.checkpoint import CheckpointError, load_checkpoint
from harness.provenance import now_utc
from harness.registry import CORRUPTIONS, MODELS
from harness.run.config import SweepConfig
from harness.runtime import describe_device
from harness.store import CLEAN, ResultStore

log = logging.getLogger(__name__)


def deployment_key(label: str, dataset: str, device: str) -> str:
    return f"{label}|{dataset}|{device}"


def record_dataset_cards(cfg: SweepConfig, cache: Any, store: ResultStore) -> int:
    """Store the card of every dataset of ``cfg``; returns how many were written."""
    from harness.datasets.detect import dataset_card

    n = 0
    for entry in cfg.datasets:
        card = {**dataset_card(cache.dataset(entry.name, entry.options)), "name": entry.shown}
        store.add_artifact("dataset_card", entry.shown, card, now_utc())
        n += 1
    return n


def _first_clean_trainings(trainings: Sequence[Any]) -> list[Any]:
    """One training cell per (label, dataset): clean condition if present, lowest seed."""
    chosen: dict[tuple[str, str], Any] = {}
    for t in trainings:
        k = (t.label, t.dataset_shown)
        cur = chosen.get(k)
        rank = (t.condition != "clean", t.seed)
        if cur is None or rank < (cur.condition != "clean", cur.seed):
            chosen[k] = t
    return list(chosen.values())


def _profiled(cfg: SweepConfig, trainings: Sequence[Any], store: ResultStore, kind: str, device: torch.device,
              log_fn: Callable[[str], None]) -> list[Any]:
    """The training cells to profile for artifacts of ``kind``: one per (label, dataset), its
    training done, not yet profiled on ``device``; a failed training is skipped with the reason."""
    dev = describe_device(device)
    done = store.artifacts(kind)
    trained = {r.train_key: (r.status, r.error) for r in store.dataframe("trainings").itertuples()}
    todo = []
    for t in _first_clean_trainings(trainings):
        status, error = trained.get(t.key, ("missing", "no training record"))
        if status != "ok":  # nothing to profile: say why, once, instead of failing to load a checkpoint
            if kind == "deployment":
                log_fn(f"deployment: skipped {t.label} on {t.dataset_shown}: its training failed ({error})")
        elif deployment_key(t.label, t.dataset_shown, dev) not in done:
            todo.append(t)
    return todo


def _trained_model(t: Any, dataset: Any, out: Path) -> Any:
    """Training cell ``t``'s model with its checkpoint's weights."""
    state, _meta = load_checkpoint(out / "checkpoints" / f"{t.key}.pt")
    model = MODELS.create(t.model, dataset.spec, **t.options)
    model.load_state_dict(state)
    return model


def _profile_each(todo: Sequence[Any], kind: str, store: ResultStore, device: torch.device,
                  measure: Callable[[Any], dict[str, Any]]) -> int:
    """Store ``measure(t)`` as a ``kind`` artifact of each training cell of ``todo``, or a failed
    record with the reason; returns how many were measured."""
    dev = describe_device(device)
    measured = 0
    for t in todo:
        base = {"variant": t.label, "model_name": t.model, "dataset": t.dataset_shown, "train_key": t.key, "seed": t.seed,
                "extractor_set": t.extractor_set or None}
        try:
            record = {**base, **measure(t), "status": "ok", "error": None}
            measured += 1
        except (CheckpointError, RuntimeError, ValueError, OSError) as exc:
            record = {**base, "device": dev, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            log.warning("%s profile of %s on %s failed: %s", kind, t.label, t.dataset_shown, record["error"])
        store.add_artifact(kind, deployment_key(t.label, t.dataset_shown, dev), record, now_utc())
    return measured


def record_deployment(cfg: SweepConfig, trainings: Sequence[Any], cache: Any, store: ResultStore, out: Path,
                      device: torch.device, log_fn: Callable[[str], None] = print) -> int:
    """Profile each model once per dataset (see the module doc); returns how many were measured."""
    from harness.profile import deployment_profile, mean_utterance_duration

    if not cfg.deployment.enabled:
        return 0
    todo = _profiled(cfg, trainings, store, "deployment", device, log_fn)
    if todo:
        log_fn(f"deployment: profiling {len(todo)} model(s) on {describe_device(device)}")

    def measure(t: Any) -> dict[str, Any]:
        dataset = cache.dataset(t.dataset, t.dataset_options)
        model = _trained_model(t, dataset, out)
        try:
            duration: float | None = mean_utterance_duration(dataset)
        except ValueError:
            duration = None  # no raw audio: no real-time factor
        return deployment_profile(model, dataset.spec, device, n_utts_max=cfg.deployment.max_utterances,
                                  repeats=cfg.deployment.repeats, utterance_duration_s=duration)

    return _profile_each(todo, "deployment", store, device, measure)


def record_pipelines(cfg: SweepConfig, trainings: Sequence[Any], cache: Any, store: ResultStore, out: Path,
                     device: torch.device, log_fn: Callable[[str], None] = print) -> int:
    """End-to-end profiles of the models of datasets whose raw media come from files (see the
    module doc); returns how many were measured."""
    from harness.corruption import RawCorruption
    from harness.extractors.base import describe_extractor, extractor_from_config
    from harness.pipeline_profile import pipeline_profile, streamed_utterances

    if not cfg.deployment.enabled:
        return 0
    todo = [t for t in _profiled(cfg, trainings, store, "pipeline", device, log_fn)
            if streamed_utterances(cache.dataset(t.dataset, t.dataset_options), 1)]
    if todo:
        log_fn(f"deployment: profiling the raw-media pipeline of {len(todo)} model(s) on {describe_device(device)}")

    def measure(t: Any) -> dict[str, Any]:
        dataset = cache.dataset(t.dataset, t.dataset_options)
        configs = dataset.card.get("extractors") or {}
        extractors = {m: extractor_from_config(c) for m, c in configs.items()}
        corruption, severity, label = None, 0, None
        for c in cfg.corruptions:
            obj = CORRUPTIONS.get(c.name).obj
            if isinstance(obj, type) and issubclass(obj, RawCorruption):
                candidate = CORRUPTIONS.create(c.name, **c.options)
                if candidate.modality in extractors:
                    corruption, severity = candidate.bind(dataset), max(c.severities)
                    label = c.label or c.name
                    break
        profile = pipeline_profile(_trained_model(t, dataset, out), dataset, extractors, device, corruption, severity,
                                   cfg.run.corruption_seed, n_utts=cfg.deployment.max_utterances)
        return {**profile, "corruption": label, "severity": severity,
                "extractors": {m: describe_extractor(c) for m, c in configs.items()}}

    return _profile_each(todo, "pipeline", store, device, measure)


def record_feature_cache(cfg: SweepConfig, cache: Any, store: ResultStore) -> bool:
    """Store the sweep's extraction cache summary: its size (entries, bytes, storage dtype,
    limit, folder) and, per dataset entry and extractor, the extractions it ran (clean and
    corrupted, over all processes and runs in that folder) and what it holds."""
    from harness.extractors.base import config_digest, describe_extractor

    extraction = cache.extraction_cache
    if extraction is None:
        return False
    size = extraction.size_report()
    held = {g["extractor"]: g for g in size["by_extractor"]}
    rows: list[dict[str, Any]] = []
    for entry in cfg.datasets:
        card = cache.dataset(entry.name, entry.options).card
        for modality, config in sorted((card.get("extractors") or {}).items()):
            digest = config_digest(config)
            counts = extraction.extraction_counts(digest)
            if not counts and digest not in held:
                continue  # features made outside the cache (e.g. a generated dataset's clean ones)
            shared = next((r for r in rows if r["digest"] == digest), None)
            if shared is not None:  # one extractor in several entries or sets: one row, its entries named
                shared["dataset"] += f", {entry.shown}"
                shared["extractor_set"] = ", ".join(filter(None, [shared["extractor_set"], entry.extractor_set]))
                continue
            clean = sum(n for (c, _, _), n in counts.items() if c == CLEAN)
            rows.append({"dataset": entry.shown, "extractor_set": entry.extractor_set, "modality": modality,
                         "extractor": describe_extractor(config), "digest": digest, "clean_extractions": clean,
                         "corrupted_extractions": sum(counts.values()) - clean,
                         "corrupted_conditions": sum(1 for (c, _, _) in counts if c != CLEAN),
                         "entries": int(held.get(digest, {}).get("entries", 0)),
                         "bytes": int(held.get(digest, {}).get("bytes", 0))})
    summary = {k: size[k] for k in ("root", "dtype", "max_bytes", "entries", "bytes")}
    store.add_artifact("feature_cache", "summary", {**summary, "extractors": rows}, now_utc())
    return True


def write_galleries(cfg: SweepConfig, cache: Any, out: Path) -> list[str]:
    """Draw the sweep's raw-media corruptions for each dataset that keeps raw media; returns paths."""
    from harness.corruption import RawCorruption
    from harness.run.gallery import make_gallery

    names: list[str] = []
    options: dict[str, dict[str, Any]] = {}
    for c in cfg.corruptions:
        obj = CORRUPTIONS.get(c.name).obj
        if c.name not in options and isinstance(obj, type) and issubclass(obj, RawCorruption):
            names.append(c.name)
            options[c.name] = {k: v for k, v in c.options.items() if k != "schedule"}
    written: list[str] = []
    if not names:
        return written
    import matplotlib.pyplot as plt

    for entry in cfg.datasets:
        stem = out / "figures" / f"gallery_{entry.shown}"
        if stem.with_suffix(".png").exists():
            written += [str(stem.with_suffix(".png")), str(stem.with_suffix(".pdf"))]
            continue
        test = cache.dataset(entry.name, entry.options).splits["test"]
        if not test or test[0].utterances[0].raw is None:
            continue
        stem.parent.mkdir(parents=True, exist_ok=True)
        fig, paths = make_gallery(test, names, stem, seed=cfg.run.corruption_seed, options=options)
        plt.close(fig)
        written += [str(p) for p in paths]
    return written


def run_post_run(cfg: SweepConfig, trainings: Sequence[Any], cache: Any, store: ResultStore, out: Path,
                   device: torch.device, log_fn: Callable[[str], None] = print) -> None:
    """Dataset cards, deployment and pipeline profiles, the feature cache summary and galleries;
    a failure here is logged, never fatal
    (the result rows are already stored and the report marks what is missing)."""
    for what, stage in (("dataset cards", lambda: record_dataset_cards(cfg, cache, store)),
                        ("deployment profiles", lambda: record_deployment(cfg, trainings, cache, store, out, device,
                                                                          log_fn)),
                        ("pipeline profiles", lambda: record_pipelines(cfg, trainings, cache, store, out, device,
                                                                       log_fn)),
                        ("feature cache summary", lambda: record_feature_cache(cfg, cache, store)),
                        ("corruption gallery", lambda: write_galleries(cfg, cache, out))):
        try:
            stage()
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log_fn(f"warning: {what} not written: {type(exc).__name__}: {exc}")
