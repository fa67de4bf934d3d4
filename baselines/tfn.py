"""Tensor Fusion Network (Zadeh et al. 2017, "Tensor Fusion Network for Multimodal Sentiment
Analysis", EMNLP).

Architecture as in the paper: modality embedding subnetworks (a recurrent network over the
words for language, frame averaging followed by a 3-layer ReLU network for audio and video;
here a packed BiGRU replaces the paper's LSTM), then the tensor fusion layer: each embedding
``z_m`` is extended with a constant 1 and the outer product ``[z_t; 1] x [z_a; 1] x [z_v; 1]``
is flattened, so it holds the unimodal, bimodal and trimodal interactions; a two-layer ReLU
"sentiment inference" network maps it to the prediction. Any set of modalities in the spec
is fused (the outer product runs over them in order).

Defaults: ``text_hidden=32`` for language, ``hidden=8`` for every other modality and
``post_hidden=64`` (the paper uses 128 for language, 32 for audio/video and 128 in the
inference network; the smaller sizes keep the fused tensor at 33 x 9 x 9 = 2673 values, small
enough for the CPU on small data), ``dropout=0.15`` (in the paper's range).
Utterance level.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import UtteranceSubnet, subnet_kind
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.registry import MODELS


@MODELS.register("tfn", level="utterance", modalities=["text", "audio", "video"],
                 paper="Zadeh et al. 2017, Tensor Fusion Network for Multimodal Sentiment Analysis")
class TFN(BenchModel):
    """Outer product of the 1-extended modality embeddings, then a ReLU inference network."""

    level = "utterance"

    def __init__(self, spec: DataSpec, hidden: int = 8, text_hidden: int = 32, post_hidden: int = 64, dropout: float = 0.15) -> None:
        super().__init__(spec)
        for name, v in (("hidden", hidden), ("text_hidden", text_hidden), ("post_hidden", post_hidden)):
            if v < 1:
                raise ValueError(f"tfn: {name} must be >= 1, got {v}")
        sizes = {m: text_hidden if m == "text" else hidden for m in spec.dims}
        self.subnets = nn.ModuleDict({m: UtteranceSubnet(d, sizes[m], subnet_kind(m), dropout) for m, d in spec.dims.items()})
        fused = 1
        for m in spec.dims:
            fused *= sizes[m] + 1
        self.inference = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(fused, post_hidden), nn.ReLU(),
            nn.Linear(post_hidden, post_hidden), nn.ReLU(), nn.Linear(post_hidden, spec.output_dim),
        )

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        fused: torch.Tensor | None = None
        for m in self.spec.dims:
            z = self.subnets[m](batch.inputs[m], batch.lengths[m])
            z = torch.cat([z, torch.ones_like(z[:, :1])], dim=-1)  # [B, h+1]
            fused = z if fused is None else (fused.unsqueeze(-1) * z.unsqueeze(1)).flatten(1)
        assert fused is not None
        return ModelOutput(squeeze_regression(self.inference(fused), self.spec))
