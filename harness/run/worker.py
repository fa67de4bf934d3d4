"""One training cell's work: train (or restore) its model, then evaluate its grid.

:func:`run_training_cell` is what every executor runs, in this process, a pool process or a
Ray worker. Results leave through callbacks (the driver alone writes the store). A
:class:`DatasetCache` loads each dataset once per process and builds each corrupted test set
once, so every model sees the identical corrupted input (paired corruption). Raw-media
features (the clean ones a raw loader extracts, and those of corrupted media) go through the
sweep's on-disk :class:`~harness.extractors.cache.ExtractionCache` (:class:`FeatureCacheSettings`),
so each is extracted once per sweep across every worker process and Ray node, and a resumed
run extracts none of those already stored.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from harness import faults
from harness.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from harness.corruption import RawCorruption, utterance_rng
from harness.data.types import BenchDataset, Dialogue
from harness.extractors.cache import ExtractionCache, add_stats, using_cache
from harness.provenance import code_version, config_hash, now_utc, package_versions
from harness.registry import CORRUPTIONS, DATASETS, DEFENSES, MODELS
from harness.run.config import SweepConfig
from harness.run.plan import EvalCell, TrainingCell
from harness.runtime import describe_device, describe_node, determinism_status, seed_everything
from harness.store import CLEAN
from harness.train import evaluate, fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureCacheSettings:
    """Where a sweep's extraction cache lives and how it stores (``[feature_cache]``): plain
    values, so they travel to worker processes and Ray tasks."""

    root: str
    dtype: str = "float32"
    max_bytes: int | None = None
    progress: bool = True  # a progress bar on stderr while features are extracted

    @classmethod
    def of(cls, cfg: SweepConfig, out: Path, progress: bool = True) -> FeatureCacheSettings:
        """``cfg``'s cache settings for run directory ``out`` (default folder: ``out/feature_cache``)."""
        section = cfg.feature_cache
        root = Path(section.dir) if section.dir else Path(out) / "feature_cache"
        limit = None if section.max_gb is None else max(1, int(section.max_gb * 2**30))
        return cls(str(root.resolve()), section.dtype, limit, progress)

    def open(self) -> ExtractionCache:
        return ExtractionCache(self.root, dtype=self.dtype, max_bytes=self.max_bytes)  # type: ignore[arg-type]


class DatasetCache:
    """Loads each (dataset, options) once per sweep and each corrupted test set once.

    ``limit`` (a smoke run's ``run.limit``): keep only the first ``limit`` dialogues of each
    split of every dataset this cache hands out, unless a call names its own limit.
    ``features``: the sweep's extraction cache (opened on first use); without it raw-media
    features are extracted in memory (and a raw loader uses its own ``cache_dir``).
    """

    def __init__(self, limit: int | None = None, features: FeatureCacheSettings | None = None) -> None:
        self.limit = limit
        self.features = features
        self._extraction_cache: ExtractionCache | None = None
        self._datasets: dict[tuple[str, str, int | None], BenchDataset] = {}
        self._test_sets: dict[tuple[Any, ...], list[Dialogue]] = {}
        self._datasets_aug: dict[tuple[str, str, int | None, str], BenchDataset] = {}

    @property
    def extraction_cache(self) -> ExtractionCache | None:
        """The sweep's extraction cache (None without ``features``), opened once per process."""
        if self._extraction_cache is None and self.features is not None:
            self._extraction_cache = self.features.open()
        return self._extraction_cache

    def dataset(self, name: str, options: dict[str, Any], limit: int | None = None) -> BenchDataset:
        limit = limit if limit is not None else self.limit
        key = (name, config_hash(options), limit)
        if key not in self._datasets:
            full = (name, config_hash(options), None)
            dataset = self._datasets.get(full)
            if dataset is None:
                with using_cache(self.extraction_cache):
                    dataset = DATASETS.create(name, **options)
            self._datasets[key] = first_dialogues(dataset, limit) if limit is not None else dataset
        return self._datasets[key]

    def training_dataset(self, t: TrainingCell) -> BenchDataset:
        """The dataset a training cell trains on: clean, or with corrupted train copies added."""
        dataset = self.dataset(t.dataset, t.dataset_options, t.limit)
        if t.condition == CLEAN:
            return dataset
        key = (t.dataset, config_hash(t.dataset_options), t.limit, config_hash(t.condition_spec))
        if key not in self._datasets_aug:
            self._datasets_aug[key] = augment_training_set(dataset, t.condition_spec)
        return self._datasets_aug[key]

    def test_set(self, cell: EvalCell, dataset: BenchDataset) -> list[Dialogue]:
        """The cell's test dialogues: clean, or corrupted (a raw-media corruption's features
        from the extraction cache, extracted only where missing), then defended."""
        key = cell.test_set_key
        if key not in self._test_sets:
            dialogues = dataset.splits["test"]
            if cell.corruption != CLEAN:
                corruption = CORRUPTIONS.create(cell.corruption, **cell.corruption_options)
                if hasattr(corruption, "bind"):
                    corruption = corruption.bind(dataset)
                if isinstance(corruption, RawCorruption) and self.extraction_cache is not None:
                    dialogues = corruption.cached(dialogues, cell.severity, cell.corruption_seed,
                                                  self.extraction_cache, keep_raw=cell.defense != "none",
                                                  progress=f"extracting {cell.corruption_label}@{cell.severity}"
                                                  if self.features and self.features.progress else None)
                else:
                    dialogues = corruption(dialogues, cell.severity, cell.corruption_seed)
            if cell.defense != "none":
                defense = DEFENSES.create(cell.defense, **cell.defense_options)
                if hasattr(defense, "bind"):
                    defense = defense.bind(dataset)
                dialogues = defense(dialogues)
            self._test_sets[key] = dialogues
        return self._test_sets[key]


def first_dialogues(dataset: BenchDataset, limit: int) -> BenchDataset:
    """``dataset`` with only the first ``limit`` dialogues of each split (a smoke run); the card
    says so."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1 dialogue per split, got {limit!r}")
    splits = {s: list(dialogues[:limit]) for s, dialogues in dataset.splits.items()}
    card = {**dataset.card, "limit": f"first {limit} dialogue(s) of each split (run.limit)"}
    return BenchDataset(dataset.name, dataset.spec, splits, card)


def augment_training_set(dataset: BenchDataset, condition: dict[str, Any]) -> BenchDataset:
    """``dataset`` with ``condition["copies"]`` corrupted copies of its train split appended.

    Each copied dialogue gets one mix entry and one of its severities, drawn from a generator
    seeded by the condition and the dialogue id (so the augmented set is the same in every
    run). The validation and test splits stay clean: selection is on clean validation data.
    """
    corruptions = []
    for mix in condition["mix"]:
        c = CORRUPTIONS.create(mix["name"], **mix["options"])
        corruptions.append((c.bind(dataset) if hasattr(c, "bind") else c, mix["severities"]))
    extra: list[Dialogue] = []
    for copy in range(condition["copies"]):
        for d in dataset.splits["train"]:
            rng = utterance_rng(0, "train-augment", condition["name"], copy, d.dialogue_id)
            corruption, severities = corruptions[int(rng.integers(len(corruptions)))]
            severity = int(severities[int(rng.integers(len(severities)))])
            (noisy,) = corruption([d], severity, int(rng.integers(2**31)))
            extra.append(Dialogue(f"{d.dialogue_id}~aug{copy}", [
                replace(u, uid=f"{u.uid}~aug{copy}", dialogue_id=f"{d.dialogue_id}~aug{copy}") for u in noisy.utterances]))
    card = {**dataset.card, "training_condition": {"name": condition["name"], "added_train_dialogues": len(extra)}}
    return BenchDataset(dataset.name, dataset.spec, {**dataset.splits, "train": dataset.splits["train"] + extra}, card)


EmitTraining = Callable[[dict[str, Any]], None]
EmitResult = Callable[[EvalCell, dict[str, Any], "dict[str, Any] | None"], None]


def run_training_cell(t: TrainingCell, cells: list[EvalCell], cache: DatasetCache, out: Path, device: torch.device,
                      cfg_hash: str, emit_training: EmitTraining, emit_result: EmitResult) -> None:
    """Train (or restore from its checkpoint) one model and evaluate ``cells``.

    Results leave through the callbacks as soon as each is computed: the local executor
    writes them to the store at once, the Ray executor ships them back to the driver.
    Every cell leaves as exactly one row: a training that fails (divergence, out of memory,
    bad input, any error) gives a ``failed`` row with the reason for each of its cells, an
    evaluation that fails gives a ``failed`` row for that cell, and the sweep goes on. A
    checkpoint that fails verification (digest, weights-only load, shapes) is never used:
    the model is trained again and the training record says why.
    """
    ckpt = out / "checkpoints" / f"{t.key}.pt"
    common = {"train_key": t.key, "model": t.model, "variant": t.label, "model_options": t.options,
              "dataset": t.dataset_shown, "train_condition": t.condition, "seed": t.seed, "config_hash": cfg_hash,
              "code_version": code_version(), "package_versions": package_versions(),
              "device": describe_device(device), "node": describe_node()}
    training = {"train_key": t.key, "model": t.model, "variant": t.label, "dataset": t.dataset_shown,
                "train_condition": t.condition, "seed": t.seed, "node": common["node"]}
    seed_everything(t.seed)
    start = time.perf_counter()
    best_epoch: int | None = None
    try:
        dataset = cache.dataset(t.dataset, t.dataset_options, t.limit)
        model, rejected = None, None
        if ckpt.exists():
            try:
                state, meta = load_checkpoint(ckpt)
                restored = MODELS.create(t.model, dataset.spec, **t.options)
                restored.load_state_dict(state)
            except (CheckpointError, RuntimeError) as exc:
                rejected = _reason(exc)
                log.warning("%s: not used, training again (%s)", ckpt, rejected)
            else:
                model, best_epoch = restored, meta.get("best_epoch")
                if isinstance(meta.get("training_row"), dict):
                    # the crash may have come between the checkpoint and the training record
                    emit_training({**meta["training_row"], "restored": True})
        if model is None:
            seed_everything(t.seed)  # the same initial weights as a run that never saw a checkpoint
            model = MODELS.create(t.model, dataset.spec, **t.options)
            result = fit(model, cache.training_dataset(t), t.train, seed=t.seed, device=device)
            best_epoch = result.best_epoch
            fit_info = result.to_dict() | ({"checkpoint_rejected": rejected} if rejected else {})
            row = {**training, "status": "ok", "error": None, "fit": fit_info,
                   "checkpoint": str(ckpt.relative_to(out)), "params": model.num_parameters(),
                   "device": common["device"], "wall_time_s": time.perf_counter() - start, "created_at": now_utc()}
            save_checkpoint(ckpt, model.state_dict(), {"train_key": t.key, "best_epoch": best_epoch,
                                                       "model": t.model, "options": t.options,
                                                       "training_row": _jsonable(row)})
            emit_training(row)
    except Exception as exc:  # noqa: BLE001 - any failure of a cell is recorded, never raised (see docstring)
        reason = _reason(exc)
        emit_training({**training, "status": "failed", "error": reason,
                       "fit": {"traceback": traceback.format_exc(limit=5)}, "checkpoint": None, "params": None,
                       "device": common["device"], "wall_time_s": time.perf_counter() - start,
                       "created_at": now_utc()})
        failed = _with_determinism(common, device)
        for cell in cells:
            emit_result(cell, _row(failed, cell, "failed", reason, {}, 0, best_epoch, 0.0), None)
        return
    for cell in cells:
        t0 = time.perf_counter()
        try:
            test = cache.test_set(cell, dataset)
            metrics, preds = evaluate(model, test, dataset.spec, device)
            stats = add_stats(u.extraction_stats for d in test for u in d.utterances)
        except Exception as exc:  # noqa: BLE001 - the cell is recorded as failed, the others go on
            emit_result(cell, _row(_with_determinism(common, device), cell, "failed", _reason(exc), {}, 0,
                                   best_epoch, time.perf_counter() - t0), None)
        else:
            row = _row(_with_determinism(common, device), cell, "ok", None, metrics, len(preds.uids), best_epoch,
                       time.perf_counter() - t0, stats)
            emit_result(cell, row, {"uids": preds.uids, "targets": preds.targets, "outputs": preds.outputs,
                                    "groups": preds.groups})
        faults.hit("eval-cell")


def _reason(exc: BaseException) -> str:
    """``Type: message`` of a failure, as stored in the ``error`` column."""
    return f"{type(exc).__name__}: {exc}"


def _jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON data (what a weights-only checkpoint can carry)."""
    return json.loads(json.dumps(obj, default=str))


def _with_determinism(common: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """``common`` plus ``deterministic``: whether this cell's training and evaluation reproduce
    bit for bit on this machine (False on CUDA once an op without a deterministic kernel ran);
    read when the row is made, after the work it describes."""
    return {**common, "deterministic": determinism_status(device)}


def _row(common: dict[str, Any], cell: EvalCell, status: str, error: str | None, metrics: dict[str, float],
         n: int, best_epoch: int | None, wall: float, stats: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """A result row; ``stats``: the extractors' counts summed over the cell's test utterances
    (e.g. ``{"video": {"frames": 900, "frames_without_face": 41}}``), stored as JSON."""
    parameter, value = cell.severity_parameter()
    return {**common, "cell_key": cell.key, "corruption": cell.corruption_label if cell.corruption != CLEAN else CLEAN,
            "corruption_options": {"name": cell.corruption, **cell.corruption_options}, "severity": cell.severity,
            "parameter": parameter, "parameter_value": value, "title": cell.title(),
            "schedule": str(cell.corruption_options.get("schedule", "stationary")), "defense": cell.defense,
            "split": "test", "status": status, "error": error, "metrics": metrics, "n_utterances": n,
            "best_epoch": best_epoch, "wall_time_s": wall, "created_at": now_utc(),
            "extractor_set": cell.training.extractor_set or None,
            "extraction_stats": json.dumps(stats, sort_keys=True) if stats else None}
