"""Low-rank Multimodal Fusion (Liu et al. 2018, "Efficient Low-rank Multimodal Fusion with
Modality-Specific Factors", ACL).

Architecture as in the paper: the TFN modality subnetworks (recurrent for text, frame
averaging + ReLU network for audio/video), each embedding extended with a constant 1, then
the fusion weight tensor of TFN is replaced by ``rank`` modality-specific factors
``W_m^(i)``: ``h = sum_i prod_m ([z_m; 1] W_m^(i)) + b`` (the product over modalities is
element-wise), computed without ever forming the outer-product tensor; ``h`` (``fusion_dim``
wide) goes to a linear output layer.

Defaults: ``rank=4`` (the paper's best setting on CMU-MOSI/IEMOCAP lies in 1..16 and its
reference configuration uses 4), ``text_hidden=32`` for language and ``hidden=16`` for the
other modalities (the paper: larger for language than for audio/video), ``fusion_dim=32`` (small for
the CPU; the paper uses 32..256), ``dropout=0.15``. Factors are initialised with Xavier normal
as in the reference code. Utterance level.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import UtteranceSubnet, subnet_kind
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.registry import MODELS


@MODELS.register("lmf", level="utterance", modalities=["text", "audio", "video"],
                 paper="Liu et al. 2018, Efficient Low-rank Multimodal Fusion with Modality-Specific Factors")
class LMF(BenchModel):
    """Low-rank factorised tensor fusion of the modality embeddings."""

    level = "utterance"

    def __init__(self, spec: DataSpec, hidden: int = 16, text_hidden: int = 32, rank: int = 4, fusion_dim: int = 32,
                 dropout: float = 0.15) -> None:
        super().__init__(spec)
        for name, v in (("hidden", hidden), ("text_hidden", text_hidden), ("rank", rank), ("fusion_dim", fusion_dim)):
            if v < 1:
                raise ValueError(f"lmf: {name} must be >= 1, got {v}")
        sizes = {m: text_hidden if m == "text" else hidden for m in spec.dims}
        self.subnets = nn.ModuleDict({m: UtteranceSubnet(d, sizes[m], subnet_kind(m), dropout) for m, d in spec.dims.items()})
        self.factors = nn.ParameterDict({m: nn.Parameter(torch.empty(rank, sizes[m] + 1, fusion_dim)) for m in spec.dims})
        for p in self.factors.values():
            nn.init.xavier_normal_(p)
        self.fusion_weights = nn.Parameter(torch.empty(1, rank))
        nn.init.xavier_normal_(self.fusion_weights)
        self.fusion_bias = nn.Parameter(torch.zeros(fusion_dim))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(fusion_dim, spec.output_dim))

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        prod: torch.Tensor | None = None
        for m in self.spec.dims:
            z = self.subnets[m](batch.inputs[m], batch.lengths[m])
            z = torch.cat([z, torch.ones_like(z[:, :1])], dim=-1)  # [B, h+1]
            f = torch.einsum("bh,rho->rbo", z, self.factors[m].to(z.dtype))  # [rank, B, fusion]
            prod = f if prod is None else prod * f
        assert prod is not None
        fused = torch.einsum("r,rbo->bo", self.fusion_weights[0].to(prod.dtype), prod) + self.fusion_bias
        return ModelOutput(squeeze_regression(self.head(fused), self.spec))
