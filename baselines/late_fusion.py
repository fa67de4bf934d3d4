"""Late fusion: one predictor per modality, predictions combined by learned weights.

Decision-level fusion as defined by Snoek et al. 2005 ("Early versus late fusion in semantic
video analysis"): each modality is classified on its own (here the unimodal baseline's
packed BiGRU encoder and two-layer head) and the per-modality logits (or scores) are
averaged with softmax-normalised learned weights (initialised equal, i.e. a plain mean).

Not to be confused with ``lf-dnn``, MMSA's "late fusion DNN": that one concatenates the
modality *embeddings* and fuses them with a deep network (feature-level fusion); this one fuses
the per-modality *decisions*. The two are different methods that share an everyday name.

Defaults (``hidden=64``, ``dropout=0.2``) are the unimodal baselines' so the comparison is
like for like; they are small enough to train on the CPU on the synthetic dataset.
Utterance level: inputs ``[B, T, D]`` per modality with lengths.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import SequenceEncoder, mlp
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.options import DropoutRate, PositiveInt
from harness.registry import MODELS
from harness.tuning import Choice, LogUniform, Uniform


@MODELS.register("late-fusion", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "hidden": Choice([32, 64, 128])},
                 level="utterance", modalities=["text", "audio", "video"],
                 paper="Snoek et al. 2005, Early versus late fusion in semantic video analysis")
class LateFusion(BenchModel):
    """Per-modality BiGRU predictors whose outputs are averaged with learned weights."""

    level = "utterance"

    def __init__(self, spec: DataSpec, hidden: PositiveInt = 64, dropout: DropoutRate = 0.2) -> None:
        super().__init__(spec)
        self.encoders = nn.ModuleDict({m: SequenceEncoder(d, hidden, dropout) for m, d in spec.dims.items()})
        self.heads = nn.ModuleDict({m: mlp(2 * hidden, hidden, spec.output_dim, dropout) for m in spec.dims})
        self.logit_weights = nn.Parameter(torch.zeros(len(spec.dims)))

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        outs = torch.stack([self.heads[m](self.encoders[m](batch.inputs[m], batch.lengths[m])) for m in self.spec.dims])
        w = torch.softmax(self.logit_weights, dim=0).to(outs.dtype)  # [M]
        fused = (w[:, None, None] * outs).sum(0)
        extras = {"per_modality": dict(zip(self.spec.dims, outs.detach())), "weights": w.detach()}
        return ModelOutput(squeeze_regression(fused, self.spec), extras=extras)
