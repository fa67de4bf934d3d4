"""Tensor Fusion Network (Zadeh et al. 2017, "Tensor Fusion Network for Multimodal Sentiment
Analysis", EMNLP), as configured and implemented in the MMSA toolkit (thuiar/MMSA).

Architecture (the reference code, layer by layer):

* audio and video: the mean of the utterance's frames, then BatchNorm, dropout and three
  Linear+ReLU layers of width ``audio_hidden`` / ``video_hidden``;
* text: a one-layer LSTM of width ``text_hidden`` over the frames, its final hidden state,
  dropout, and a linear layer to ``text_out`` (no activation);
* tensor fusion: each embedding is extended with a leading constant 1, and the outer product
  ``[1; z_a] x [1; z_v] x [1; z_t]`` is flattened (unimodal, bimodal and trimodal terms);
* inference network: dropout, Linear to ``post_fusion_dim`` + ReLU, Linear + ReLU, Linear to
  the output;
* regression only: the score is squashed into ``output_range`` by a sigmoid,
  ``lo + (hi - lo) * sigmoid(y)``, with the range and shift held as frozen parameters as in
  the reference (``output_range=None`` leaves the score unbounded).

Any subset of text/audio/video is fused (outer product in the order audio, video, text).
Differences from the reference, all for padding safety: the LSTM runs over the real frames only
(packed) and the audio/video means average the real frames only (MMSA averages over the
padded length). MMSA's 1-layer text subnetwork forces its dropout to 0 (the presets set
``text_dropout=0.0``).

Defaults (no preset): a small configuration for the CPU, not the paper's:
``text_hidden=32, text_out=32, audio_hidden=8, video_hidden=8, post_fusion_dim=64``, every
dropout ``dropout=0.15``. Presets ``mosi``, ``mosei``, ``sims`` reproduce MMSA's
``config_regression.json`` (counts in the preset's reference). Utterance level.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import ParameterBlock, option_or, reference_order, tfn_subnets
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.options import DropoutRate, PositiveInt
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import Choice, LogUniform, Uniform

_MMSA = dict(repo="thuiar/MMSA", path="src/MMSA/models/singleTask/TFN.py", commit="a94e65d")
_NOTES = ("Not reproduced (padding safety): MMSA runs the text LSTM over the padded sequence and averages audio/video "
          "over the padded length; here the LSTM is packed and means cover the real frames. MMSA's trainer leaves "
          "the audio subnet's BatchNorm weight and bias out of the optimiser (Adam over parameters()[2:]); here every "
          "parameter is trained. MMSA selects on the validation L1 loss (= MAE) and stops after 8 epochs without "
          "improvement, with no epoch limit.")
_BLOCKS = {"audio_subnet": ("subnets.audio",), "video_subnet": ("subnets.video",), "text_subnet": ("subnets.text",),
           "post_fusion_layer_1": ("post_fusion_layer_1",), "post_fusion_layer_2": ("post_fusion_layer_2",),
           "post_fusion_layer_3": ("post_fusion_layer_3",), "output_range": ("output_range",),
           "output_shift": ("output_shift",)}


def _preset(ds: str, dims: dict, hidden: tuple, text_out: int, post: int, drops: tuple, bs: int, lr: float,
            params: int, blocks: dict) -> Preset:
    t, a, v = hidden
    return Preset(
        options=dict(text_hidden=t, audio_hidden=a, video_hidden=v, text_out=text_out, post_fusion_dim=post,
                     audio_dropout=drops[0], video_dropout=drops[1], text_dropout=0.0, post_fusion_dropout=drops[3],
                     output_range=(-3.0, 3.0)),
        dims=dims, task="regression",
        recipe=dict(optimizer="adam", lr=lr, weight_decay=0.0, batch_size=bs, epochs=200, patience=8, grad_clip=None,
                    lr_schedule="constant", selection_metric="mae"),
        reference=Reference(**_MMSA, config=f"src/MMSA/config/config_regression.json: tfn.commonParams + datasetParams.{ds}",
                            params=params, blocks=blocks, notes=_NOTES),
        blocks=_BLOCKS,
        notes=f"text dropout {drops[2]} in the config is a no-op in MMSA's one-layer text LSTM; the output range (-3, 3) "
              "is hard-coded in MMSA for every dataset.",
    )


TFN_PRESETS: dict[str, Preset] = {
    "mosi": _preset("mosi", {"text": 768, "audio": 5, "video": 20}, (128, 32, 128), 32, 64, (0.3, 0.3, 0.3, 0.5), 32,
                    1e-3, 9_497_045,
                    {"audio_subnet": 2_314, "video_subnet": 35_752, "text_subnet": 463_904,
                     "post_fusion_layer_1": 8_990_848, "post_fusion_layer_2": 4_160, "post_fusion_layer_3": 65,
                     "output_range": 1, "output_shift": 1}),
    "mosei": _preset("mosei", {"text": 768, "audio": 74, "video": 35}, (128, 16, 128), 128, 16, (0.4,) * 4, 128, 5e-3,
                     5_042_541,
                     {"audio_subnet": 1_892, "video_subnet": 37_702, "text_subnet": 476_288,
                      "post_fusion_layer_1": 4_526_368, "post_fusion_layer_2": 272, "post_fusion_layer_3": 17,
                      "output_range": 1, "output_shift": 1}),
    "sims": _preset("sims", {"text": 768, "audio": 33, "video": 709}, (128, 32, 128), 256, 32, (0.4,) * 4, 32, 5e-4,
                    35_632_079,
                    {"audio_subnet": 3_266, "video_subnet": 125_322, "text_subnet": 492_800,
                     "post_fusion_layer_1": 35_009_600, "post_fusion_layer_2": 1_056, "post_fusion_layer_3": 33,
                     "output_range": 1, "output_shift": 1}),
}


@MODELS.register("tfn", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "post_fusion_dim": Choice([32, 64, 128])},
                 level="utterance", modalities=["text", "audio", "video"],
                 paper="Zadeh et al. 2017, Tensor Fusion Network for Multimodal Sentiment Analysis",
                 presets=TFN_PRESETS)
class TFN(BenchModel):
    """Outer product of the 1-extended modality embeddings, then a ReLU inference network."""

    level = "utterance"

    def __init__(self, spec: DataSpec, text_hidden: PositiveInt = 32, text_out: PositiveInt = 32,
                 audio_hidden: PositiveInt = 8, video_hidden: PositiveInt = 8, post_fusion_dim: PositiveInt = 64,
                 dropout: DropoutRate = 0.15, audio_dropout: DropoutRate | None = None,
                 video_dropout: DropoutRate | None = None, text_dropout: DropoutRate | None = None,
                 post_fusion_dropout: DropoutRate | None = None,
                 output_range: tuple[float, float] | None = (-3.0, 3.0)) -> None:
        super().__init__(spec)
        self.order = reference_order(list(spec.dims), ("audio", "video", "text"))
        self.subnets, widths = tfn_subnets("tfn", spec.dims, text_hidden, text_out, audio_hidden, video_hidden,
                                           dropout, audio_dropout, video_dropout, text_dropout)
        fused = 1
        for m in self.order:
            fused *= widths[m] + 1
        self.post_fusion_dropout = nn.Dropout(option_or(post_fusion_dropout, dropout))
        self.post_fusion_layer_1 = nn.Linear(fused, post_fusion_dim)
        self.post_fusion_layer_2 = nn.Linear(post_fusion_dim, post_fusion_dim)
        self.post_fusion_layer_3 = nn.Linear(post_fusion_dim, spec.output_dim)
        self.squash = spec.task == "regression" and output_range is not None
        if self.squash:
            assert output_range is not None
            lo, hi = (float(v) for v in output_range)
            if not hi > lo:
                raise ValueError(f"tfn: output_range must be (low, high) with high > low, got {output_range!r}")
            self.output_range = ParameterBlock(1, requires_grad=False)
            self.output_shift = ParameterBlock(1, requires_grad=False)
            self.output_range.weight.data.fill_(hi - lo)
            self.output_shift.weight.data.fill_(lo)

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        fused: torch.Tensor | None = None
        for m in self.order:
            z = self.subnets[m](batch.inputs[m], batch.lengths[m])
            z = torch.cat([torch.ones_like(z[:, :1]), z], dim=-1)  # [B, h+1], the constant first as in the reference
            fused = z if fused is None else (fused.unsqueeze(-1) * z.unsqueeze(1)).flatten(1)
        assert fused is not None
        y = torch.relu(self.post_fusion_layer_1(self.post_fusion_dropout(fused)))
        y = self.post_fusion_layer_3(torch.relu(self.post_fusion_layer_2(y)))
        if self.squash:
            y = torch.sigmoid(y) * self.output_range.weight + self.output_shift.weight
        return ModelOutput(squeeze_regression(y, self.spec))
