"""Expand a sweep into cells and run them: train once, evaluate many (DESIGN.md rule 2).

A *training cell* is (model, dataset, training condition, seed); its *evaluation cells* are
the clean test set plus every (corruption, severity). Each training cell is trained at most
once (its checkpoint is reused on resume) and every evaluation cell is stored as one row as
soon as it is computed; cells already in the store are skipped. A corrupted test set is
built once and shared by all models, so comparisons are paired.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import Any

import tomli_w
import torch

from harness import faults
from harness.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from harness.config import SweepConfig, model_sets
from harness.data.types import BenchDataset, Dialogue
from harness.provenance import code_version, config_hash, now_utc, package_versions
from harness.registry import CORRUPTIONS, DATASETS, DEFENSES, MODELS
from harness.runtime import describe_device, seed_everything, select_device
from harness.store import ResultStore
from harness.train import TrainConfig, evaluate, fit

CLEAN = "clean"
log = logging.getLogger(__name__)


class SweepError(RuntimeError):
    """A sweep cannot start (output directory, lock) or a cell is malformed."""


@dataclass(frozen=True)
class TrainingCell:
    label: str
    model: str
    options: dict[str, Any]
    dataset: str
    dataset_options: dict[str, Any]
    condition: str
    seed: int
    train: TrainConfig
    condition_spec: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return config_hash({"model": self.model, "options": self.options, "dataset": self.dataset,
                            "dataset_options": self.dataset_options, "condition": self.condition,
                            "condition_spec": self.condition_spec,
                            "seed": self.seed, "train": self.train.to_dict()})


@dataclass(frozen=True)
class EvalCell:
    training: TrainingCell
    corruption: str
    corruption_options: dict[str, Any]
    corruption_label: str
    severity: int
    corruption_seed: int
    defense: str = "none"
    defense_options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return config_hash({"train": self.training.key, "corruption": self.corruption,
                            "corruption_options": self.corruption_options, "severity": self.severity,
                            "corruption_seed": self.corruption_seed, "defense": self.defense,
                            "defense_options": self.defense_options})

    @property
    def test_set_key(self) -> tuple[Any, ...]:
        """Identifies the (corrupted) test set, shared by every model."""
        t = self.training
        return (t.dataset, config_hash(t.dataset_options), self.corruption, config_hash(self.corruption_options),
                self.severity, self.corruption_seed, self.defense, config_hash(self.defense_options))


@dataclass
class Plan:
    trainings: list[TrainingCell]
    evaluations: dict[str, list[EvalCell]]  # training key -> its cells

    @property
    def n_evaluations(self) -> int:
        return sum(len(v) for v in self.evaluations.values())

    def describe(self, stored: set[str] | None = None) -> str:
        stored = stored or set()
        todo_eval = sum(1 for cells in self.evaluations.values() for c in cells if c.key not in stored)
        todo_train = sum(1 for t in self.trainings if any(c.key not in stored for c in self.evaluations[t.key]))
        return (f"plan: {len(self.trainings)} trainings x up to {self.n_evaluations // max(len(self.trainings), 1)} "
                f"evaluations each = {self.n_evaluations} evaluation cells; "
                f"to run: {todo_train} trainings, {todo_eval} evaluations "
                f"({self.n_evaluations - todo_eval} already stored)")


def expand_models(cfg: SweepConfig) -> list[tuple[str, str, dict[str, Any], TrainConfig]]:
    """(label, model name, options, train config) for every model entry, named sets expanded."""
    out = []
    sets = None
    for entry in cfg.models:
        train = cfg.train.train_config(entry.train, entry.recipe())
        if entry.set is not None:
            sets = sets or model_sets()
            for label, name, options in sets[entry.set]:
                out.append((label, name, {**options, **entry.options}, train))
        else:
            assert entry.name is not None
            default_label = f"{entry.name}[{entry.preset}]" if entry.preset else entry.name
            out.append((entry.label or default_label, entry.name, entry.model_options(), train))
    labels = [o[0] for o in out]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise SweepError(f"model labels must be unique within a sweep; repeated: {dupes} (set 'label' on the entries)")
    return out


def make_plan(cfg: SweepConfig) -> Plan:
    trainings: list[TrainingCell] = []
    evaluations: dict[str, list[EvalCell]] = {}
    defenses = [("none", {})] + [(d.name, dict(d.options)) for d in cfg.defenses]
    conditions = [(CLEAN, {})] if cfg.include_clean_training else []
    conditions += [(tc.name, tc.model_dump()) for tc in cfg.train_conditions]
    for ds in cfg.datasets:
        for (label, name, options, train), (cond, cond_spec), seed in product(expand_models(cfg), conditions,
                                                                               cfg.run.seeds):
            shown = label if cond == CLEAN else f"{label}+{cond}"
            t = TrainingCell(shown, name, options, ds.name, dict(ds.options), cond, seed, train, cond_spec)
            cells = [EvalCell(t, CLEAN, {}, CLEAN, 0, cfg.run.corruption_seed)]
            for c in cfg.corruptions:
                clabel = c.label or _corruption_label(c.name, c.options)
                for sev in c.severities:
                    if sev == 0:
                        continue  # severity 0 is the clean cell, stored once
                    for dname, dopts in defenses:
                        cells.append(EvalCell(t, c.name, dict(c.options), clabel, sev, cfg.run.corruption_seed,
                                              dname, dopts))
            trainings.append(t)
            evaluations[t.key] = cells
    return Plan(trainings, evaluations)


def _corruption_label(name: str, options: dict[str, Any]) -> str:
    extra = ",".join(f"{k}={v}" for k, v in sorted(options.items()))
    return f"{name}[{extra}]" if extra else name


def check_writable(out: Path) -> None:
    """Create ``out`` and prove it is writable, or raise :class:`SweepError` naming it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise SweepError(f"output directory {out} is not writable: {exc.strerror or exc}") from None


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out/.lock``; a second sweep on the same directory is refused."""
    path = out / ".lock"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise SweepError(f"run directory {out} is in use by process {holder}; wait for it to finish "
                             f"or use another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


class DatasetCache:
    """Loads each (dataset, options) once per sweep and each corrupted test set once."""

    def __init__(self) -> None:
        self._datasets: dict[tuple[str, str], BenchDataset] = {}
        self._test_sets: dict[tuple[Any, ...], list[Dialogue]] = {}
        self._datasets_aug: dict[tuple[str, str, str], BenchDataset] = {}

    def dataset(self, name: str, options: dict[str, Any]) -> BenchDataset:
        key = (name, config_hash(options))
        if key not in self._datasets:
            self._datasets[key] = DATASETS.create(name, **options)
        return self._datasets[key]

    def training_dataset(self, t: TrainingCell) -> BenchDataset:
        """The dataset a training cell trains on: clean, or with corrupted train copies added."""
        dataset = self.dataset(t.dataset, t.dataset_options)
        if t.condition == CLEAN:
            return dataset
        key = (t.dataset, config_hash(t.dataset_options), config_hash(t.condition_spec))
        if key not in self._datasets_aug:
            self._datasets_aug[key] = augment_training_set(dataset, t.condition_spec)
        return self._datasets_aug[key]

    def test_set(self, cell: EvalCell, dataset: BenchDataset) -> list[Dialogue]:
        key = cell.test_set_key
        if key not in self._test_sets:
            dialogues = dataset.splits["test"]
            if cell.corruption != CLEAN:
                corruption = CORRUPTIONS.create(cell.corruption, **cell.corruption_options)
                if hasattr(corruption, "bind"):
                    corruption = corruption.bind(dataset)
                dialogues = corruption(dialogues, cell.severity, cell.corruption_seed)
            if cell.defense != "none":
                defense = DEFENSES.create(cell.defense, **cell.defense_options)
                if hasattr(defense, "bind"):
                    defense = defense.bind(dataset)
                dialogues = defense(dialogues)
            self._test_sets[key] = dialogues
        return self._test_sets[key]


def augment_training_set(dataset: BenchDataset, condition: dict[str, Any]) -> BenchDataset:
    """``dataset`` with ``condition["copies"]`` corrupted copies of its train split appended.

    Each copied dialogue gets one mix entry and one of its severities, drawn from a generator
    seeded by the condition and the dialogue id (so the augmented set is the same in every
    run). The validation and test splits stay clean: selection is on clean validation data.
    """
    from corruptions.base import utterance_rng

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


def severity_parameter(name: str, options: dict[str, Any], severity: int) -> tuple[str | None, str | None]:
    if name == CLEAN:
        return None, None
    table = getattr(CORRUPTIONS.get(name).obj, "table", None)
    if table is None:
        return None, None
    return table.parameter, f"{table.values[severity]} {table.unit}".strip()


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
              "dataset": t.dataset, "train_condition": t.condition, "seed": t.seed, "config_hash": cfg_hash,
              "code_version": code_version(), "package_versions": package_versions(),
              "device": describe_device(device)}
    training = {"train_key": t.key, "model": t.model, "variant": t.label, "dataset": t.dataset,
                "train_condition": t.condition, "seed": t.seed}
    seed_everything(t.seed)
    start = time.perf_counter()
    best_epoch: int | None = None
    try:
        dataset = cache.dataset(t.dataset, t.dataset_options)
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
        for cell in cells:
            emit_result(cell, _row(common, cell, "failed", reason, {}, 0, best_epoch, 0.0), None)
        return
    for cell in cells:
        t0 = time.perf_counter()
        try:
            test = cache.test_set(cell, dataset)
            metrics, preds = evaluate(model, test, dataset.spec, device)
        except Exception as exc:  # noqa: BLE001 - the cell is recorded as failed, the others go on
            emit_result(cell, _row(common, cell, "failed", _reason(exc), {}, 0, best_epoch,
                                   time.perf_counter() - t0), None)
        else:
            row = _row(common, cell, "ok", None, metrics, len(preds.uids), best_epoch, time.perf_counter() - t0)
            emit_result(cell, row, {"uids": preds.uids, "targets": preds.targets, "outputs": preds.outputs})
        faults.hit("eval-cell")


def _reason(exc: BaseException) -> str:
    """``Type: message`` of a failure, as stored in the ``error`` column."""
    return f"{type(exc).__name__}: {exc}"


def _jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON data (what a weights-only checkpoint can carry)."""
    return json.loads(json.dumps(obj, default=str))


def _row(common: dict[str, Any], cell: EvalCell, status: str, error: str | None, metrics: dict[str, float],
         n: int, best_epoch: int | None, wall: float) -> dict[str, Any]:
    parameter, value = severity_parameter(cell.corruption, cell.corruption_options, cell.severity)
    return {**common, "cell_key": cell.key, "corruption": cell.corruption_label if cell.corruption != CLEAN else CLEAN,
            "corruption_options": {"name": cell.corruption, **cell.corruption_options}, "severity": cell.severity,
            "parameter": parameter, "parameter_value": value,
            "schedule": str(cell.corruption_options.get("schedule", "stationary")), "defense": cell.defense,
            "split": "test", "status": status, "error": error, "metrics": metrics, "n_utterances": n,
            "best_epoch": best_epoch, "wall_time_s": wall, "created_at": now_utc()}


@dataclass
class SweepSummary:
    out: Path
    trainings_run: int
    cells_written: int
    cells_skipped: int
    failed: int
    wall_time_s: float


def run_sweep(cfg: SweepConfig, out: str | Path, raw_config: dict[str, Any] | None = None, progress: bool = True,
              log: Callable[[str], None] = print, retry_failed: bool = False) -> SweepSummary:
    """Run every cell of ``cfg`` not yet stored in ``out/results.sqlite``.

    ``retry_failed``: first delete the stored ``failed`` rows, so those cells run again (a
    failed training is trained again; a failed evaluation of a trained model reuses its
    checkpoint). Without it a failed cell stays failed: it is a result, not a gap.
    """
    out = Path(out)
    check_writable(out)
    start = time.perf_counter()
    with run_lock(out):
        raw = raw_config if raw_config is not None else cfg.model_dump()
        cfg_hash = config_hash(raw)
        (out / "config.toml").write_text(tomli_w.dumps(_tomlable(raw)))
        store = ResultStore(out / "results.sqlite")
        device = select_device(cfg.run.device)
        plan = make_plan(cfg)
        if retry_failed:
            log(f"retrying {store.delete_failed()} failed cell(s)")
        stored = store.stored_keys()
        log(plan.describe(stored))
        store.add_run(config_hash({"config": cfg_hash, "at": now_utc()}), raw, cfg_hash,
                      {"code_version": code_version(), "packages": package_versions(),
                       "device": describe_device(device)}, now_utc())
        todo = [(t, [c for c in plan.evaluations[t.key] if c.key not in stored]) for t in plan.trainings]
        todo = [(t, cells) for t, cells in todo if cells]
        n_cells = sum(len(c) for _, c in todo)
        cache = DatasetCache()
        bar = _progress(n_cells, progress)
        failed = 0

        def on_result(cell: EvalCell, row: dict[str, Any], preds: dict[str, Any] | None) -> None:
            nonlocal failed
            store.add_result(row, preds)
            failed += row["status"] != "ok"
            bar.set_postfix_str(f"{cell.training.label} seed={cell.training.seed} {row['corruption']}@{cell.severity}")
            bar.update(1)

        if cfg.run.executor == "ray":
            from harness.executors import run_on_ray

            run_on_ray(todo, out, cfg.run.device, cfg_hash, store.add_training, on_result)
        elif cfg.run.executor == "processes" and todo:
            from harness.executors import default_workers, run_on_processes

            run_on_processes(todo, out, cfg.run.device, cfg_hash, store.add_training, on_result,
                             cfg.run.workers or min(default_workers(), len(todo)))
        else:
            for t, cells in todo:
                run_training_cell(t, cells, cache, out, device, cfg_hash, store.add_training, on_result)
        bar.close()
        from harness.post_sweep import run_post_sweep

        run_post_sweep(cfg, plan.trainings, cache, store, out, device, log)
    return SweepSummary(out, len(todo), n_cells, plan.n_evaluations - n_cells, failed, time.perf_counter() - start)


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="cells", unit="cell", disable=not enabled, dynamic_ncols=True)


def _tomlable(obj: Any) -> Any:
    """Drop None values (TOML has no null) recursively."""
    if isinstance(obj, dict):
        return {k: _tomlable(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_tomlable(v) for v in obj if v is not None]
    return obj
