"""Multimodal Transformer (Tsai et al. 2019, "Multimodal Transformer for Unaligned Multimodal
Language Sequences", ACL).

Architecture as in the paper, on *unaligned* sequences: each modality is projected to a
common width ``d`` by a temporal 1-D convolution (kernel 1, the reference default) and given
sinusoidal positions (scaled by sqrt(d) as in the paper); for every target modality ``b``
and every source ``a != b`` a crossmodal transformer (pre-LayerNorm layers whose queries
come from ``b`` and keys/values from ``a``) yields ``Z_{a->b}``; the ``Z_{.->b}`` are
concatenated over features and passed through a self-attention transformer; the last real
step of each target is taken, the targets are concatenated and a residual two-layer ReLU
block and a linear layer give the prediction. Keys at padding steps are masked out
everywhere (``key_padding_mask``), so a sample's output does not depend on its batch.

Defaults: ``d=16``, ``heads=2``, ``layers=2``, ``dropout=0.1`` (the paper uses d=30/40,
5/10 heads, 4/5 layers and dropout 0.1-0.2; these are scaled down for the CPU on small
data). Needs at least two modalities. Utterance level.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import CrossAttentionLayer, sinusoidal_positions
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.registry import MODELS


def _last_step(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x[b, lengths[b] - 1]`` for every ``b``: ``[B, T, D]`` -> ``[B, D]``."""
    idx = (lengths.clamp(min=1) - 1).to(x.device)
    return x[torch.arange(x.shape[0], device=x.device), idx]


@MODELS.register("mult", level="utterance", modalities=["text", "audio", "video"],
                 paper="Tsai et al. 2019, Multimodal Transformer for Unaligned Multimodal Language Sequences")
class MulT(BenchModel):
    """Crossmodal transformers between every ordered pair of modalities, then self-attention."""

    level = "utterance"

    def __init__(self, spec: DataSpec, d: int = 16, heads: int = 2, layers: int = 2, dropout: float = 0.1) -> None:
        super().__init__(spec)
        if len(spec.dims) < 2:
            raise ValueError(f"mult fuses at least two modalities; the data has {list(spec.dims)}")
        for name, v in (("d", d), ("heads", heads), ("layers", layers)):
            if v < 1:
                raise ValueError(f"mult: {name} must be >= 1, got {v}")
        if d % heads:
            raise ValueError(f"mult: d ({d}) must be divisible by heads ({heads})")
        mods = list(spec.dims)
        self.d = d
        self.proj = nn.ModuleDict({m: nn.Conv1d(dim, d, kernel_size=1, bias=False) for m, dim in spec.dims.items()})
        self.cross = nn.ModuleDict({
            f"{a}_to_{b}": nn.ModuleList([CrossAttentionLayer(d, heads, dropout) for _ in range(layers)])
            for b in mods for a in mods if a != b
        })
        wide = d * (len(mods) - 1)
        self.self_attn = nn.ModuleDict({
            b: nn.ModuleList([CrossAttentionLayer(wide, heads, dropout) for _ in range(layers)]) for b in mods
        })
        self.final_norm = nn.ModuleDict({b: nn.LayerNorm(wide) for b in mods})
        total = wide * len(mods)
        self.residual = nn.Sequential(nn.Linear(total, total), nn.ReLU(), nn.Dropout(dropout), nn.Linear(total, total))
        self.out = nn.Linear(total, spec.output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        mods = list(self.spec.dims)
        h, pad = {}, {}
        for m in mods:
            x = self.proj[m](batch.inputs[m].transpose(1, 2)).transpose(1, 2)  # [B, T, d]
            pos = sinusoidal_positions(x.shape[1], self.d, x.device, x.dtype)
            h[m] = self.dropout(math.sqrt(self.d) * x + pos)
            pad[m] = ~batch.frame_mask(m)
        pooled = []
        for b in mods:
            zs = []
            for a in mods:
                if a == b:
                    continue
                z = h[b]
                for layer in self.cross[f"{a}_to_{b}"]:
                    z = layer(z, h[a], pad[a])
                zs.append(z)
            z = torch.cat(zs, dim=-1)
            for layer in self.self_attn[b]:
                z = layer(z, z, pad[b])
            pooled.append(_last_step(self.final_norm[b](z), batch.lengths[b]))
        joint = torch.cat(pooled, dim=-1)
        joint = joint + self.residual(joint)
        return ModelOutput(squeeze_regression(self.out(joint), self.spec))
