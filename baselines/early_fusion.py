"""Early fusion (EF-LSTM style): concatenate the modalities frame by frame, then one encoder.

Unaligned sequences are first resampled (linear interpolation over each utterance's real
frames) to ``align_len`` steps, so every modality contributes to every step; the joint
sequence goes through a bidirectional GRU and an MLP head. Utterance level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import SequenceEncoder, mlp
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.registry import MODELS


def resample(x: torch.Tensor, lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """Linearly resample the real frames of each ``x[b]`` (``[B, T, D]``) to ``[B, steps, D]``."""
    out = []
    for b in range(x.shape[0]):
        seq = x[b, : int(lengths[b])].transpose(0, 1).unsqueeze(0)  # [1, D, T_b]
        if seq.shape[-1] == 1:
            out.append(seq.expand(-1, -1, steps)[0].transpose(0, 1))
        else:
            out.append(F.interpolate(seq, size=steps, mode="linear", align_corners=True)[0].transpose(0, 1))
    return torch.stack(out)


@MODELS.register("early-fusion", level="utterance", modalities=["text", "audio", "video"], paper="EF-LSTM")
class EarlyFusion(BenchModel):
    """Frame-level concatenation of all modalities into one BiGRU encoder."""

    level = "utterance"

    def __init__(self, spec: DataSpec, hidden: int = 64, align_len: int = 16, dropout: float = 0.2) -> None:
        super().__init__(spec)
        if align_len < 1:
            raise ValueError(f"early-fusion: align_len must be >= 1, got {align_len}")
        self.align_len = align_len
        self.norms = torch.nn.ModuleDict({m: torch.nn.LayerNorm(d) for m, d in spec.dims.items()})
        self.encoder = SequenceEncoder(sum(spec.dims.values()), hidden, dropout)
        self.head = mlp(self.encoder.out_dim, hidden, spec.output_dim, dropout)

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        parts = [resample(self.norms[m](batch.inputs[m]), batch.lengths[m], self.align_len) for m in self.spec.dims]
        joint = torch.cat(parts, dim=-1)
        lengths = torch.full((joint.shape[0],), self.align_len, dtype=torch.long, device=joint.device)
        return ModelOutput(squeeze_regression(self.head(self.encoder(joint, lengths)), self.spec))
