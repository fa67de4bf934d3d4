"""Training with early stopping on the validation split, prediction and evaluation.

Model selection only ever looks at the validation split (docs/DESIGN.md rule 3). On CUDA the
forward pass runs under autocast (bf16, or fp16 with a gradient scaler); on the CPU in fp32.

Faults are stopped here, never turned into numbers: a non-finite training loss or validation
output raises :class:`DivergenceError`; non-finite predictions raise
:class:`NonFiniteOutputError`; running out of memory (CUDA OOM, a CPU allocation failure)
halves the batch size and starts the pass again, down to batch size 1, after which
:class:`OutOfMemoryError` says so. The batch size actually used is in ``FitResult.batch_size``.
"""

from __future__ import annotations

import copy
import gc
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from harness import faults
from harness.data.collate import Batch, collate_dialogues, collate_utterances, flat_output, flat_targets, flat_uids
from harness.data.types import BenchDataset, DataSpec, Dialogue, inverse_frequency_weights
from harness.metrics import compute_metrics, default_metric, higher_is_better
from harness.models import BenchModel, as_output
from harness.runtime import amp_dtype, autocast, select_device

log = logging.getLogger(__name__)
T = TypeVar("T")


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss; the message names the epoch and step."""


class NonFiniteOutputError(ValueError):
    """A model's predictions contain NaN or inf; the message names the model and an utterance."""


class OutOfMemoryError(RuntimeError):
    """A pass ran out of memory even at batch size 1; the message names the pass and the cause."""


_OOM_MESSAGES = ("out of memory", "can't allocate memory", "defaultcpuallocator", "failed to allocate")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA OOM, ``MemoryError`` and allocator failures reported as ``RuntimeError``."""
    if isinstance(exc, MemoryError) or isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MESSAGES)


def with_batch_backoff(run: Callable[[int], T], batch_size: int, what: str,
                       device: torch.device | None = None) -> tuple[T, int, list[str]]:
    """``run(batch_size)``, halving the batch size after each out-of-memory failure.

    Returns ``(result, batch size used, one note per back-off)``. Other exceptions pass
    through; running out of memory at batch size 1 raises :class:`OutOfMemoryError`.
    """
    bs, notes = int(batch_size), []
    while True:
        try:
            return run(bs), bs, notes
        except Exception as exc:  # noqa: BLE001 - filtered just below
            if not is_out_of_memory(exc):
                raise
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        # out of the except block: the traceback (and the tensors its frames hold) is gone
        if device is not None and device.type == "cuda":
            gc.collect()
            torch.cuda.empty_cache()
        if bs <= 1:
            raise OutOfMemoryError(f"{what}: out of memory even at batch size 1 ({reason})")
        notes.append(f"batch size {bs}: {reason}; retrying with {max(1, bs // 2)}")
        log.warning("%s: out of memory at batch size %d, retrying with %d (%s)", what, bs, max(1, bs // 2), reason)
        bs = max(1, bs // 2)


OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
LR_SCHEDULES = ("constant", "cosine", "plateau", "step")
SELECTIONS = ("best", "last")
SCHEDULE_OPTIONS = {"constant": set(), "cosine": {"T_max", "eta_min"}, "plateau": {"factor", "patience", "min_lr"},
                    "step": {"step_size", "gamma"}}


@dataclass
class TrainConfig:
    """How a model is trained. Batch sizes count utterances (utterance-level models) or
    dialogues (dialogue-level models). ``patience`` epochs without a validation improvement
    stop training; ``selection_metric`` defaults to the task's headline metric.

    ``optimizer`` with ``lr``, ``weight_decay`` (and ``momentum`` for sgd/rmsprop);
    ``lr_schedule`` is stepped once per epoch: ``cosine`` (``T_max`` epochs, default
    ``epochs``; ``eta_min``), ``plateau`` (on the validation selection metric; ``factor``,
    ``patience``, ``min_lr``) or ``step`` (``step_size``, ``gamma``), with ``schedule_options``.
    ``selection``: ``"best"`` keeps the epoch with the best validation score and stops after
    ``patience`` epochs without one; ``"last"`` trains every epoch and keeps the last (a fixed
    budget: no choice is made on a small validation split, whose noise would otherwise pass into
    the selected epoch; validation is still scored each epoch, for the learning curves).
    ``grad_clip`` clips the gradient norm (``grad_clip_mode="norm"``) or each gradient value
    (``"value"``); ``None`` turns clipping off. ``class_weights``: ``"none"``,
    ``"inverse_frequency"`` (from the train split) or one weight per class.
    """

    epochs: int = 30
    batch_size: int = 32
    dialogue_batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    momentum: float = 0.0
    lr_schedule: str = "constant"
    schedule_options: dict[str, float] = field(default_factory=dict)
    patience: int = 6
    grad_clip: float | None = 1.0
    grad_clip_mode: str = "norm"
    class_weights: str | list[float] = "none"
    selection_metric: str | None = None
    amp: bool = True
    selection: str = "best"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "dialogue_batch_size", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0 or self.momentum < 0:
            raise ValueError(f"TrainConfig.weight_decay and momentum must be >= 0, got {self.weight_decay!r} and "
                             f"{self.momentum!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"TrainConfig.selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"TrainConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        unknown = set(self.schedule_options) - SCHEDULE_OPTIONS[self.lr_schedule]
        if unknown:
            raise ValueError(f"TrainConfig.schedule_options {sorted(unknown)} do not apply to lr_schedule "
                             f"{self.lr_schedule!r}; it takes {sorted(SCHEDULE_OPTIONS[self.lr_schedule]) or 'none'}")
        if self.grad_clip is not None and not self.grad_clip >= 0:
            raise ValueError(f"TrainConfig.grad_clip must be >= 0 (0 or None: off), got {self.grad_clip!r}")
        if self.grad_clip == 0:
            self.grad_clip = None
        if self.grad_clip_mode not in ("norm", "value"):
            raise ValueError(f"TrainConfig.grad_clip_mode must be 'norm' or 'value', got {self.grad_clip_mode!r}")
        if isinstance(self.class_weights, (list, tuple)):
            if not self.class_weights or any(not w > 0 for w in self.class_weights):
                raise ValueError(f"TrainConfig.class_weights as a list needs one positive weight per class, "
                                 f"got {self.class_weights!r}")
            self.class_weights = [float(w) for w in self.class_weights]
        elif self.class_weights not in ("none", "inverse_frequency"):
            raise ValueError(f"TrainConfig.class_weights must be 'none', 'inverse_frequency' or a list of per-class "
                             f"weights, got {self.class_weights!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recipe_fields() -> set[str]:
    """The keys a preset's training recipe may set: the fields of :class:`TrainConfig`."""
    return {f.name for f in fields(TrainConfig)}


def make_optimizer(params: Any, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser ``config`` names, over ``params``."""
    kw: dict[str, Any] = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.optimizer == "adam":
        return torch.optim.Adam(params, **kw)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, **kw)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, momentum=config.momentum, **kw)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, momentum=config.momentum, **kw)
    return torch.optim.Adagrad(params, **kw)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, maximize: bool) -> Any:
    """The per-epoch learning-rate schedule of ``config`` (``None`` for ``constant``)."""
    opts = dict(config.schedule_options)
    sched = torch.optim.lr_scheduler
    if config.lr_schedule == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=int(opts.get("T_max", config.epochs)),
                                       eta_min=float(opts.get("eta_min", 0.0)))
    if config.lr_schedule == "plateau":
        return sched.ReduceLROnPlateau(optimizer, mode="max" if maximize else "min",
                                       factor=float(opts.get("factor", 0.1)), patience=int(opts.get("patience", 10)),
                                       min_lr=float(opts.get("min_lr", 0.0)))
    if config.lr_schedule == "step":
        return sched.StepLR(optimizer, step_size=int(opts.get("step_size", 10)), gamma=float(opts.get("gamma", 0.1)))
    return None


def class_weight_tensor(config: TrainConfig, dataset: BenchDataset) -> torch.Tensor | None:
    """Per-class loss weights ``[C]`` for ``config.class_weights`` (``None`` when unweighted)."""
    spec = dataset.spec
    if spec.task != "classification" or config.class_weights == "none":
        return None
    if config.class_weights == "inverse_frequency":
        return inverse_frequency_weights(dataset.utterances("train"), int(spec.num_classes))
    weights = list(config.class_weights)
    if len(weights) != spec.num_classes:
        raise ValueError(f"TrainConfig.class_weights has {len(weights)} weights but dataset {dataset.name!r} has "
                         f"{spec.num_classes} classes")
    return torch.tensor(weights, dtype=torch.float32)


@dataclass
class FitResult:
    best_epoch: int
    best_valid: dict[str, float]
    selection_metric: str
    epochs_run: int
    train_time_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    batch_size: int | None = None
    oom_backoffs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Predictions:
    """Model outputs for the real utterances of a split, in a fixed order.

    ``targets``: ``[M]`` int labels or float scores; ``outputs``: ``[M, C]`` logits or ``[M]``.
    """

    uids: list[str]
    targets: np.ndarray
    outputs: np.ndarray
    batch_size: int | None = None
    groups: list[str] | None = None
    """The dialogue id of every utterance (the unit a test-set bootstrap resamples)."""

    def predicted(self, task: str) -> np.ndarray:
        return self.outputs.argmax(-1) if task == "classification" else self.outputs


def iter_batches(model: BenchModel, dialogues: Sequence[Dialogue], spec: DataSpec, batch_size: int,
                 shuffle: bool = False, generator: torch.Generator | None = None) -> Iterator[Batch]:
    """Batches of ``dialogues`` at the model's level, optionally shuffled with ``generator``."""
    if model.level == "dialogue":
        items: Sequence[Any] = dialogues
    elif model.level == "utterance":
        items = [u for d in dialogues for u in d.utterances]
    else:
        raise ValueError(f"model {type(model).__name__} declares level {model.level!r}; expected 'utterance' or 'dialogue'")
    order = torch.randperm(len(items), generator=generator).tolist() if shuffle else range(len(items))
    order = list(order)
    for start in range(0, len(order), batch_size):
        chunk = [items[i] for i in order[start:start + batch_size]]
        if model.level == "dialogue":
            yield collate_dialogues(chunk, spec, model.pooling)
        else:
            yield collate_utterances(chunk, spec)


def _batch_size(model: BenchModel, config: TrainConfig) -> int:
    return config.dialogue_batch_size if model.level == "dialogue" else config.batch_size


def predict(model: BenchModel, dialogues: Sequence[Dialogue], spec: DataSpec, device: torch.device | str = "auto",
            batch_size: int | None = None, amp: bool = True) -> Predictions:
    """Run ``model`` in eval mode over ``dialogues``; outputs are float32 on the CPU.

    Out of memory, the batch size is halved (see :func:`with_batch_backoff`); NaN or inf in
    the outputs raise :class:`NonFiniteOutputError` instead of being scored.
    """
    device = select_device(device)
    model.eval().to(device)
    bs = batch_size or (8 if model.level == "dialogue" else 64)
    preds, used, _ = with_batch_backoff(lambda b: _predict(model, dialogues, spec, device, b, amp), bs,
                                        f"prediction with {type(model).__name__}", device)
    preds.batch_size = used
    bad = ~np.isfinite(preds.outputs)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(preds.uids), -1).any(axis=1))
        raise NonFiniteOutputError(f"{type(model).__name__} produced {int(bad.sum())} non-finite output value(s) "
                                   f"(NaN/inf) for {len(rows)} of {len(preds.uids)} utterances, first "
                                   f"{preds.uids[int(rows[0])]!r}; refusing to score them")
    return preds


@torch.inference_mode()
def _predict(model: BenchModel, dialogues: Sequence[Dialogue], spec: DataSpec, device: torch.device, bs: int,
             amp: bool) -> Predictions:
    uids: list[str] = []
    targets, outputs = [], []
    for batch in iter_batches(model, dialogues, spec, bs):
        batch = batch.to(device)
        with autocast(device, amp):
            out = as_output(model(batch)).prediction
        outputs.append(flat_output(out, batch).float().cpu())
        targets.append(flat_targets(batch).cpu())
        uids.extend(flat_uids(batch))
    if not uids:
        raise ValueError("predict: no utterances to predict")
    dialogue_of = {u.uid: d.dialogue_id for d in dialogues for u in d.utterances}
    return Predictions(uids, torch.cat(targets).numpy(), torch.cat(outputs).numpy(),
                       groups=[str(dialogue_of[u]) for u in uids])


def evaluate(model: BenchModel, dialogues: Sequence[Dialogue], spec: DataSpec, device: torch.device | str = "auto",
             batch_size: int | None = None) -> tuple[dict[str, float], Predictions]:
    """Metrics of ``model`` on ``dialogues`` plus the predictions they came from."""
    preds = predict(model, dialogues, spec, device, batch_size)
    return compute_metrics(spec.task, preds.targets, preds.outputs, spec.names, spec.metric_set), preds


def prediction_loss(task: str, targets: np.ndarray, outputs: np.ndarray) -> float:
    """The unweighted task loss of stored predictions: mean cross-entropy of ``[M, C]`` logits
    against labels, or mean absolute error of ``[M]`` scores (what ``valid_loss`` reports)."""
    out = torch.as_tensor(outputs, dtype=torch.float32)
    if task == "classification":
        return float(F.cross_entropy(out, torch.as_tensor(targets, dtype=torch.long)))
    return float((out - torch.as_tensor(targets, dtype=torch.float32)).abs().mean())


def fit(model: BenchModel, dataset: BenchDataset, config: TrainConfig | None = None, seed: int = 0,
        device: torch.device | str = "auto", progress: Callable[[dict[str, float]], None] | None = None,
        on_step: Callable[[BenchModel], None] | None = None) -> FitResult:
    """Train ``model`` on ``dataset``'s train split, selecting the epoch on its valid split.

    On return the model holds the weights of the selected epoch. Raises
    :class:`DivergenceError` when the loss stops being finite. Out of memory, training starts
    again from the same initial weights and random state at half the batch size.
    ``progress(row)`` sees each epoch's history row (train loss, learning rate, valid loss and
    metrics); ``on_step(model)`` runs after each backward pass, before clipping and the optimiser
    step (to read gradients, e.g. for diagnostics).
    """
    config = config or TrainConfig()
    device = select_device(device)
    for split in ("train", "valid"):
        if not dataset.splits[split]:
            raise ValueError(f"dataset {dataset.name!r}: split {split!r} has no dialogues; fit needs both train "
                             f"and valid")
    model.to(device)
    initial = copy.deepcopy(model.state_dict())
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def attempt(bs: int) -> FitResult:
        model.load_state_dict(initial)
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, device)
        return _fit(model, dataset, config, seed, device, progress, bs, on_step)

    result, used, notes = with_batch_backoff(attempt, _batch_size(model, config),
                                             f"training {type(model).__name__} on {dataset.name!r}", device)
    result.batch_size, result.oom_backoffs = used, notes
    return result


def _fit(model: BenchModel, dataset: BenchDataset, config: TrainConfig, seed: int, device: torch.device,
         progress: Callable[[dict[str, float]], None] | None, batch_size: int,
         on_step: Callable[[BenchModel], None] | None = None) -> FitResult:
    spec = dataset.spec
    metric = config.selection_metric or default_metric(spec.task)
    better = higher_is_better(metric)
    optimizer = make_optimizer(model.parameters(), config)
    scheduler = make_scheduler(optimizer, config, maximize=better)
    use_scaler = amp_dtype(device) == torch.float16 and config.amp
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    weights = class_weight_tensor(config, dataset)
    if weights is not None:
        weights = weights.to(device)
    generator = torch.Generator().manual_seed(seed)
    best_state, best_valid, best_epoch = None, None, 0
    best_score = -math.inf if better else math.inf
    history: list[dict[str, float]] = []
    stale = 0
    start = time.perf_counter()
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        losses = []
        for step, batch in enumerate(iter_batches(model, dataset.splits["train"], spec, batch_size,
                                                  shuffle=True, generator=generator)):
            batch = batch.to(device)
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, config.amp):
                output = as_output(model(batch))
                loss = model.loss(output, batch, class_weights=weights)
            if not torch.isfinite(loss):
                raise DivergenceError(f"loss became {loss.item()} at epoch {epoch}, step {step}")
            scaler.scale(loss).backward()
            if on_step is not None:
                on_step(model)
            if config.grad_clip:
                scaler.unscale_(optimizer)
                if config.grad_clip_mode == "value":
                    torch.nn.utils.clip_grad_value_(model.parameters(), config.grad_clip)
                else:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.item())
            faults.hit("train-step")
        try:
            valid, valid_preds = evaluate(model, dataset.splits["valid"], spec, device)
        except NonFiniteOutputError as exc:
            raise DivergenceError(f"validation outputs became non-finite at epoch {epoch}: {exc}") from exc
        score = valid[metric]
        if math.isnan(score):
            raise DivergenceError(f"validation {metric} is NaN at epoch {epoch}")
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), "lr": optimizer.param_groups[0]["lr"],
               "valid_loss": prediction_loss(spec.task, valid_preds.targets, valid_preds.outputs),
               **{f"valid_{k}": v for k, v in valid.items()}}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(score)
        elif scheduler is not None:
            scheduler.step()
        history.append(row)
        if progress is not None:
            progress(row)
        if config.selection == "last":
            if epoch == config.epochs:
                best_score, best_valid, best_epoch = score, valid, epoch
                best_state = copy.deepcopy(model.state_dict())
        elif (score > best_score) if better else (score < best_score):
            best_score, best_valid, best_epoch, stale = score, valid, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                break
    assert best_state is not None and best_valid is not None
    model.load_state_dict(best_state)
    return FitResult(best_epoch, best_valid, metric, epoch, time.perf_counter() - start, history)
