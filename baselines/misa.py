"""MISA (Hazarika et al. 2020, "MISA: Modality-Invariant and -Specific Representations for
Multimodal Sentiment Analysis", ACM Multimedia).

Architecture as in the paper: each modality's utterance representation ``u_m`` comes from a
recurrent encoder (a packed BiGRU here for every modality; the paper uses BERT for text and
stacked LSTMs for audio/video) and is projected to ``hidden`` (linear, ReLU, LayerNorm). A
**shared encoder** ``E_c`` (one linear+sigmoid for all modalities) and **private encoders**
``E_p^m`` (one per modality) give invariant ``h_c^m`` and specific ``h_p^m`` vectors; a
decoder per modality reconstructs ``u_m`` from ``h_c^m + h_p^m``. Fusion: the 2M vectors are
stacked and go through a transformer (multi-head self-attention) layer, then are
concatenated and mapped by a two-layer ReLU network to the prediction.

Auxiliary losses, returned already weighted in ``ModelOutput.aux_loss`` while training:
similarity (central moment discrepancy, 5 moments, between the shared vectors of every
modality pair), difference (squared Frobenius norm of ``H_c^m^T H_p^m`` and of the private
pairs, on zero-mean L2-normalised vectors) and reconstruction (MSE). Weights
``sim_weight=1.0``, ``diff_weight=0.3``, ``recon_weight=1.0`` are those of the paper's
released configuration. The auxiliary losses are batch statistics, but predictions are not:
each sample's prediction only uses its own vectors.

Defaults: ``hidden=32``, ``heads=2`` (the paper uses 128 and 2 heads; 32 is small for the CPU on
small data), ``dropout=0.3``. Utterance level.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import CrossAttentionLayer, SequenceEncoder
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.registry import MODELS


def cmd(x1: torch.Tensor, x2: torch.Tensor, moments: int = 5) -> torch.Tensor:
    """Central moment discrepancy (Zellinger et al. 2017) between ``[B, D]`` samples."""
    m1, m2 = x1.mean(0), x2.mean(0)
    c1, c2 = x1 - m1, x2 - m2
    total = torch.linalg.vector_norm(m1 - m2)
    for k in range(2, moments + 1):
        total = total + torch.linalg.vector_norm((c1**k).mean(0) - (c2**k).mean(0))
    return total


def difference(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Soft orthogonality ``mean((X1^T X2)^2)`` of zero-mean, L2-normalised ``[B, D]`` samples."""
    x1 = F.normalize(x1 - x1.mean(0, keepdim=True), dim=1, eps=1e-6)
    x2 = F.normalize(x2 - x2.mean(0, keepdim=True), dim=1, eps=1e-6)
    return (x1.t() @ x2).pow(2).mean()


@MODELS.register("misa", level="utterance", modalities=["text", "audio", "video"],
                 paper="Hazarika et al. 2020, MISA: Modality-Invariant and -Specific Representations for "
                       "Multimodal Sentiment Analysis")
class MISA(BenchModel):
    """Shared and private subspaces per modality, transformer fusion, CMD/difference/reconstruction losses."""

    level = "utterance"

    def __init__(self, spec: DataSpec, hidden: int = 32, heads: int = 2, dropout: float = 0.3,
                 sim_weight: float = 1.0, diff_weight: float = 0.3, recon_weight: float = 1.0) -> None:
        super().__init__(spec)
        if hidden < 1 or heads < 1 or hidden % heads:
            raise ValueError(f"misa: hidden ({hidden}) must be >= 1 and divisible by heads ({heads})")
        for name, w in (("sim_weight", sim_weight), ("diff_weight", diff_weight), ("recon_weight", recon_weight)):
            if w < 0:
                raise ValueError(f"misa: {name} must be >= 0, got {w}")
        mods = list(spec.dims)
        self.weights = (sim_weight, diff_weight, recon_weight)
        self.encoders = nn.ModuleDict({m: SequenceEncoder(d, hidden) for m, d in spec.dims.items()})
        self.project = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.LayerNorm(hidden)) for m in mods
        })
        self.shared = nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid())
        self.private = nn.ModuleDict({m: nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid()) for m in mods})
        self.decoders = nn.ModuleDict({m: nn.Linear(hidden, hidden) for m in mods})
        self.fusion = CrossAttentionLayer(hidden, heads, dropout)
        width = 2 * len(mods) * hidden
        self.head = nn.Sequential(nn.Linear(width, width // 2), nn.Dropout(dropout), nn.ReLU(),
                                  nn.Linear(width // 2, spec.output_dim))

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        mods = list(self.spec.dims)
        u = {m: self.project[m](self.encoders[m](batch.inputs[m], batch.lengths[m])) for m in mods}
        hc = {m: self.shared(u[m]) for m in mods}
        hp = {m: self.private[m](u[m]) for m in mods}
        tokens = torch.stack([hp[m] for m in mods] + [hc[m] for m in mods], dim=1)  # [B, 2M, h]
        no_pad = torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        fused = self.fusion(tokens, tokens, no_pad).flatten(1)
        prediction = squeeze_regression(self.head(fused), self.spec)
        aux = None
        if self.training:
            pairs = list(itertools.combinations(mods, 2))
            sim = sum((cmd(hc[a], hc[b]) for a, b in pairs), tokens.new_zeros(())) / max(len(pairs), 1)
            diff = sum((difference(hp[m], hc[m]) for m in mods), tokens.new_zeros(()))
            diff = diff + sum((difference(hp[a], hp[b]) for a, b in pairs), tokens.new_zeros(()))
            recon = sum(F.mse_loss(self.decoders[m](hc[m] + hp[m]), u[m]) for m in mods) / len(mods)
            ws, wd, wr = self.weights
            aux = ws * sim + wd * diff + wr * recon
        return ModelOutput(prediction, aux_loss=aux)
