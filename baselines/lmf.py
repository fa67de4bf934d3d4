"""Low-rank Multimodal Fusion (Liu et al. 2018, "Efficient Low-rank Multimodal Fusion with
Modality-Specific Factors", ACL), as configured and implemented in MMSA (thuiar/MMSA).

Architecture (the reference code): TFN's modality subnetworks (audio/video: frame mean,
BatchNorm, dropout, three Linear+ReLU of width ``audio_hidden`` / ``video_hidden``; text: a
one-layer LSTM of width ``text_hidden``, final state, dropout, Linear to ``text_out``), each
embedding extended with a leading constant 1. TFN's fusion weight tensor is replaced by ``rank``
modality-specific factors ``W_m`` of shape ``[rank, h_m + 1, output]`` that map straight to the
output: ``y = w . prod_m([1; z_m] W_m) + b`` with ``w`` the ``[1, rank]`` fusion weights and
``b`` the fusion bias — no layer after the fusion. Factors and fusion weights are initialised
Xavier-normal, the bias at zero, as in the reference.

MMSA derives the text output width as ``text_hidden // 2``; here ``text_out`` is its own option
(the presets set it). MMSA creates a post-fusion dropout it never applies, so there is none.
Padding safety: the text LSTM is packed and the means cover the real frames (MMSA runs over the
padded tensors).

Defaults (no preset): a small configuration for the CPU, not the paper's:
``text_hidden=32, text_out=16, audio_hidden=16, video_hidden=16, rank=4``, dropout 0.15.
Presets ``mosi``, ``mosei``, ``sims`` reproduce MMSA's ``config_regression.json``.
Utterance level.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import ParameterBlock, reference_order, tfn_subnets
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.options import DropoutRate, PositiveInt
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import IntRange, LogUniform, Uniform

_MMSA = dict(repo="thuiar/MMSA", path="src/MMSA/models/singleTask/LMF.py", commit="a94e65d")
_BLOCKS = {"audio_factor": ("factors.audio",), "video_factor": ("factors.video",), "text_factor": ("factors.text",),
           "fusion_weights": ("fusion_weights",), "fusion_bias": ("fusion_bias",), "audio_subnet": ("subnets.audio",),
           "video_subnet": ("subnets.video",), "text_subnet": ("subnets.text",)}


def _preset(ds: str, dims: dict, hidden: tuple, drop: float, rank: int, bs: int, lr: float, factor_lr: float, wd: float,
            params: int, blocks: dict) -> Preset:
    t, a, v = hidden
    notes = ("Not reproduced: MMSA's optimiser takes parameters()[:3] at factor_lr and parameters()[5:] at lr, i.e. the "
             "audio subnet's BatchNorm and first weight at factor_lr, its linear_1 bias and linear_2 weight never "
             "trained, and the factors at lr; here one lr for every parameter"
             + (f" (factor_lr {factor_lr} differs from lr {lr} in this config)" if factor_lr != lr else "")
             + ". Text LSTM packed and means over real frames (MMSA: padded tensors). MMSA selects on the validation L1 "
               "loss (= MAE) with early stop 8 and no epoch limit.")
    return Preset(
        options=dict(text_hidden=t, text_out=t // 2, audio_hidden=a, video_hidden=v, rank=rank, audio_dropout=drop,
                     video_dropout=drop, text_dropout=0.0),
        dims=dims, task="regression",
        recipe=dict(optimizer="adam", lr=lr, weight_decay=wd, batch_size=bs, epochs=200, patience=8, grad_clip=None,
                    lr_schedule="constant", selection_metric="mae"),
        reference=Reference(**_MMSA, config=f"src/MMSA/config/config_regression.json: lmf.commonParams + datasetParams.{ds}",
                            params=params, blocks=blocks, notes=notes),
        blocks=_BLOCKS,
        notes="text_out = text_hidden // 2 as MMSA derives it; the text dropout is a no-op in MMSA's one-layer LSTM.",
    )


LMF_PRESETS: dict[str, Preset] = {
    "mosi": _preset("mosi", {"text": 768, "audio": 5, "video": 20}, (128, 16, 128), 0.3, 3, 64, 1e-3, 1e-3, 5e-3, 505_071,
                    {"audio_factor": 51, "video_factor": 387, "text_factor": 195, "fusion_weights": 3, "fusion_bias": 1,
                     "audio_subnet": 650, "video_subnet": 35_752, "text_subnet": 468_032}),
    "mosei": _preset("mosei", {"text": 768, "audio": 74, "video": 35}, (128, 16, 128), 0.2, 4, 32, 1e-3, 1e-3, 1e-3,
                     508_475,
                     {"audio_factor": 68, "video_factor": 516, "text_factor": 260, "fusion_weights": 4, "fusion_bias": 1,
                      "audio_subnet": 1_892, "video_subnet": 37_702, "text_subnet": 468_032}),
    "sims": _preset("sims", {"text": 768, "audio": 33, "video": 709}, (64, 16, 64), 0.2, 4, 64, 2e-3, 5e-4, 5e-3, 272_381,
                    {"audio_factor": 68, "video_factor": 260, "text_factor": 132, "fusion_weights": 4, "fusion_bias": 1,
                     "audio_subnet": 1_154, "video_subnet": 55_178, "text_subnet": 215_584}),
}


@MODELS.register("lmf", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "rank": IntRange(2, 8)},
                 level="utterance", modalities=["text", "audio", "video"],
                 paper="Liu et al. 2018, Efficient Low-rank Multimodal Fusion with Modality-Specific Factors",
                 presets=LMF_PRESETS)
class LMF(BenchModel):
    """Low-rank factorised tensor fusion of the modality embeddings, straight to the output."""

    level = "utterance"

    def __init__(self, spec: DataSpec, text_hidden: PositiveInt = 32, text_out: PositiveInt = 16,
                 audio_hidden: PositiveInt = 16, video_hidden: PositiveInt = 16, rank: PositiveInt = 4,
                 dropout: DropoutRate = 0.15, audio_dropout: DropoutRate | None = None,
                 video_dropout: DropoutRate | None = None, text_dropout: DropoutRate | None = None) -> None:
        super().__init__(spec)
        self.order = reference_order(list(spec.dims), ("audio", "video", "text"))
        self.subnets, widths = tfn_subnets("lmf", spec.dims, text_hidden, text_out, audio_hidden, video_hidden,
                                           dropout, audio_dropout, video_dropout, text_dropout)
        out = spec.output_dim
        self.factors = nn.ModuleDict({
            m: ParameterBlock(rank, widths[m] + 1, out) for m in spec.dims
        })
        self.fusion_weights = ParameterBlock(1, rank)
        self.fusion_bias = ParameterBlock(1, out)
        for p in [f.weight for f in self.factors.values()] + [self.fusion_weights.weight]:
            nn.init.xavier_normal_(p)

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        prod: torch.Tensor | None = None
        for m in self.order:
            z = self.subnets[m](batch.inputs[m], batch.lengths[m])
            z = torch.cat([torch.ones_like(z[:, :1]), z], dim=-1)  # [B, h+1]
            f = torch.einsum("bh,rho->rbo", z, self.factors[m].weight.to(z.dtype))  # [rank, B, out]
            prod = f if prod is None else prod * f
        assert prod is not None
        y = torch.einsum("r,rbo->bo", self.fusion_weights.weight[0].to(prod.dtype), prod) + self.fusion_bias.weight
        return ModelOutput(squeeze_regression(y, self.spec))
