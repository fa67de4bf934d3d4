"""bc-LSTM (Poria et al. 2017, "Context-Dependent Sentiment Analysis in User-Generated Videos",
ACL), hierarchical variant.

Architecture as in the paper's hierarchical fusion: the utterance vectors of a dialogue
(one per modality, layer-normalised, from the harness's pooling rule instead of the paper's
text-CNN / 3D-CNN / openSMILE features) go through a *contextual* bidirectional LSTM and a
dense ReLU layer per modality (level 1, unimodal context-dependent features); the outputs are concatenated per utterance and a
second bidirectional LSTM over the dialogue (level 2, multimodal context) is followed by a
dense ReLU layer and the output layer, one prediction per utterance. LSTMs run on packed
sequences, so padding utterances never enter the recurrence.

Defaults: ``hidden=32`` (the paper uses 100..300 units; 32 is small enough for the CPU on
small data), ``dropout=0.3`` (paper's dropout on the LSTM outputs). Dialogue level, inputs
``[B, N, D]`` with the utterance mask.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from harness.data.collate import DialogueBatch
from harness.data.types import DataSpec
from harness.layers import dialogue_lengths
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.registry import MODELS


class ContextLSTM(nn.Module):
    """Packed bidirectional LSTM over a dialogue: ``[B, N, D]`` + lengths -> ``[B, N, 2h]`` (0 at padding)."""

    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out


@MODELS.register("bc-lstm", level="dialogue", modalities=["text", "audio", "video"],
                 paper="Poria et al. 2017, Context-Dependent Sentiment Analysis in User-Generated Videos")
class BCLSTM(BenchModel):
    """Hierarchical bidirectional contextual LSTMs: unimodal context, then multimodal context."""

    level = "dialogue"
    pooling = "mean"

    def __init__(self, spec: DataSpec, hidden: int = 32, dropout: float = 0.3) -> None:
        super().__init__(spec)
        if hidden < 1:
            raise ValueError(f"bc-lstm: hidden must be >= 1, got {hidden}")
        self.norms = nn.ModuleDict({m: nn.LayerNorm(d) for m, d in spec.dims.items()})
        self.unimodal = nn.ModuleDict({m: ContextLSTM(d, hidden) for m, d in spec.dims.items()})
        self.unimodal_dense = nn.ModuleDict({m: nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU()) for m in spec.dims})
        self.multimodal = ContextLSTM(hidden * len(spec.dims), hidden)
        self.dense = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.out = nn.Linear(hidden, spec.output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch: DialogueBatch) -> ModelOutput:
        lengths = dialogue_lengths(batch.mask)
        ctx = [self.unimodal_dense[m](self.dropout(self.unimodal[m](self.norms[m](batch.inputs[m]), lengths)))
               for m in self.spec.dims]
        h = self.multimodal(torch.cat(ctx, dim=-1), lengths)
        return ModelOutput(squeeze_regression(self.out(self.dense(h)), self.spec))
