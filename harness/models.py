"""The contract every registered model follows.

A model is an ``nn.Module`` built as ``Model(spec, **options)``. It declares its ``level``
(``"utterance"`` or ``"dialogue"``) and, for dialogue models, the ``pooling`` rule that turns
an utterance's frames into one vector. ``forward(batch)`` returns a :class:`ModelOutput`
whose ``prediction`` is ``[B, C]`` / ``[B, N, C]`` logits (classification) or ``[B]`` /
``[B, N]`` scores (regression). The harness computes the task loss; a model adds its own
auxiliary terms through ``ModelOutput.aux_loss`` or by overriding :meth:`BenchModel.loss`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.collate import IGNORE_INDEX, Batch, DialogueBatch
from harness.data.types import DataSpec


@dataclass
class ModelOutput:
    """``prediction``: logits or scores (see module doc). ``aux_loss``: a scalar added to the
    task loss in training (already weighted). ``extras``: anything a model wants to expose
    (per-modality logits, attention maps) for analysis; the harness ignores it."""

    prediction: torch.Tensor
    aux_loss: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class BenchModel(nn.Module):
    """Base class of registered models. Subclasses implement ``forward(batch)``."""

    level: ClassVar[str] = "utterance"
    pooling: ClassVar[str] = "mean"

    def __init__(self, spec: DataSpec) -> None:
        super().__init__()
        if not isinstance(spec, DataSpec):
            raise TypeError(f"a model's first argument must be a harness.data.DataSpec, got {type(spec).__name__}")
        self.spec = spec

    def task_loss(self, prediction: torch.Tensor, batch: Batch, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy (optionally class-weighted) or L1 loss over the real utterances."""
        if self.spec.task == "classification":
            assert batch.labels is not None
            logits = prediction.reshape(-1, prediction.shape[-1]).float()
            target = batch.labels.reshape(-1)
            w = class_weights.to(logits.device) if class_weights is not None else None
            return F.cross_entropy(logits, target, weight=w, ignore_index=IGNORE_INDEX)
        assert batch.scores is not None
        pred = prediction.float()
        if isinstance(batch, DialogueBatch):
            return F.l1_loss(pred[batch.mask], batch.scores[batch.mask])
        return F.l1_loss(pred.reshape(-1), batch.scores)

    def loss(self, output: ModelOutput, batch: Batch, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Training objective: task loss plus the model's auxiliary loss, if any."""
        total = self.task_loss(output.prediction, batch, class_weights)
        if output.aux_loss is not None:
            total = total + output.aux_loss
        return total

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def as_output(result: ModelOutput | torch.Tensor) -> ModelOutput:
    """Accept a bare tensor from simple models and wrap it."""
    return result if isinstance(result, ModelOutput) else ModelOutput(prediction=result)


def masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over the first ``lengths[b]`` steps of ``x[b]``: ``[B, T, D]`` -> ``[B, D]``."""
    t = torch.arange(x.shape[1], device=x.device)
    m = (t[None, :] < lengths[:, None]).to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / lengths.clamp(min=1).to(x.dtype).unsqueeze(-1)


def head(in_dim: int, spec: DataSpec) -> nn.Linear:
    """The output layer for ``spec``'s task: C logits or 1 score."""
    return nn.Linear(in_dim, spec.output_dim)


def squeeze_regression(pred: torch.Tensor, spec: DataSpec) -> torch.Tensor:
    """Drop the trailing size-1 axis of a regression head's output."""
    return pred.squeeze(-1) if spec.task == "regression" else pred
