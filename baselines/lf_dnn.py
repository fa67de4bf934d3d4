"""LF-DNN: "late fusion" with a deep network over the modality embeddings, as MMSA names and
implements it (thuiar/MMSA ``LF_DNN``; after Williams et al. 2018, "Recognizing Emotions in
Video Using Multimodal DNN Feature Fusion", and Yu et al.'s MMSA benchmark).

Despite the name this is *feature*-level fusion of utterance embeddings, a different method
from the decision-level ``late-fusion`` baseline (Snoek et al. 2005), which averages
per-modality predictions.

Architecture (the reference code): TFN's modality subnetworks (audio/video: frame mean,
BatchNorm, dropout, three Linear+ReLU of width ``audio_hidden`` / ``video_hidden``; text: a
one-layer LSTM of width ``text_hidden``, its final state, dropout, Linear to ``text_out``); the
embeddings are concatenated (audio, video, text), then dropout, Linear to ``post_fusion_dim`` +
ReLU, Linear + ReLU, Linear to the output. Padding safety: the text LSTM is packed and the means
cover the real frames (MMSA runs over the padded tensors).

Defaults (no preset): small for the CPU, not the paper's: ``text_hidden=32, text_out=16,
audio_hidden=8, video_hidden=8, post_fusion_dim=32``, dropout 0.15. Presets ``mosi``, ``mosei``,
``sims`` reproduce MMSA's ``config_regression.json``. Utterance level.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import option_or, reference_order, tfn_subnets
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.options import DropoutRate, PositiveInt
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import Choice, LogUniform, Uniform

_MMSA = dict(repo="thuiar/MMSA", path="src/MMSA/models/singleTask/LF_DNN.py", commit="a94e65d")
_BLOCKS = {"audio_subnet": ("subnets.audio",), "video_subnet": ("subnets.video",), "text_subnet": ("subnets.text",)}
_NOTES = ("Not reproduced (padding safety): MMSA runs the text LSTM over the padded sequence and averages audio/video over "
          "the padded length; here packed and over the real frames. MMSA selects on the validation L1 loss (= MAE) with "
          "early stop 8 and no epoch limit.")


def _preset(ds: str, dims: dict, hidden: tuple, text_out: int, post: int, drops: tuple, bs: int, lr: float, wd: float,
            params: int, blocks: dict) -> Preset:
    t, a, v = hidden
    return Preset(
        options=dict(text_hidden=t, audio_hidden=a, video_hidden=v, text_out=text_out, post_fusion_dim=post,
                     audio_dropout=drops[0], video_dropout=drops[1], text_dropout=0.0, post_fusion_dropout=drops[3]),
        dims=dims, task="regression",
        recipe=dict(optimizer="adam", lr=lr, weight_decay=wd, batch_size=bs, epochs=200, patience=8, grad_clip=None,
                    lr_schedule="constant", selection_metric="mae"),
        reference=Reference(**_MMSA,
                            config=f"src/MMSA/config/config_regression.json: lf_dnn.commonParams + datasetParams.{ds}",
                            params=params, blocks=blocks, notes=_NOTES),
        blocks=_BLOCKS,
        notes=f"text dropout {drops[2]} in the config is a no-op in MMSA's one-layer text LSTM.",
    )


LF_DNN_PRESETS: dict[str, Preset] = {
    "mosi": _preset("mosi", {"text": 768, "audio": 5, "video": 20}, (128, 16, 128), 256, 128, (0.2,) * 4, 128, 1e-3,
                    1e-2, 597_171,
                    {"audio_subnet": 650, "video_subnet": 35_752, "text_subnet": 492_800, "post_fusion_layer_1": 51_328,
                     "post_fusion_layer_2": 16_512, "post_fusion_layer_3": 129}),
    "mosei": _preset("mosei", {"text": 768, "audio": 74, "video": 35}, (128, 32, 128), 128, 128, (0.2,) * 4, 64, 2e-3,
                     1e-3, 572_283,
                     {"audio_subnet": 4_660, "video_subnet": 37_702, "text_subnet": 476_288,
                      "post_fusion_layer_1": 36_992, "post_fusion_layer_2": 16_512, "post_fusion_layer_3": 129}),
    "sims": _preset("sims", {"text": 768, "audio": 33, "video": 709}, (128, 32, 128), 256, 32, (0.3, 0.3, 0.3, 0.5), 128,
                    5e-3, 5e-3, 635_821,
                    {"audio_subnet": 3_266, "video_subnet": 125_322, "text_subnet": 492_800,
                     "post_fusion_layer_1": 13_344, "post_fusion_layer_2": 1_056, "post_fusion_layer_3": 33}),
}


@MODELS.register("lf-dnn", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "post_fusion_dim": Choice([16, 32, 64])},
                 level="utterance", modalities=["text", "audio", "video"],
                 paper="Williams et al. 2018, Recognizing Emotions in Video Using Multimodal DNN Feature Fusion "
                       "(MMSA's LF_DNN)",
                 presets=LF_DNN_PRESETS)
class LFDNN(BenchModel):
    """Concatenated modality embeddings (TFN subnetworks) through a three-layer ReLU network."""

    level = "utterance"

    def __init__(self, spec: DataSpec, text_hidden: PositiveInt = 32, text_out: PositiveInt = 16,
                 audio_hidden: PositiveInt = 8, video_hidden: PositiveInt = 8, post_fusion_dim: PositiveInt = 32,
                 dropout: DropoutRate = 0.15, audio_dropout: DropoutRate | None = None,
                 video_dropout: DropoutRate | None = None, text_dropout: DropoutRate | None = None,
                 post_fusion_dropout: DropoutRate | None = None) -> None:
        super().__init__(spec)
        self.order = reference_order(list(spec.dims), ("audio", "video", "text"))
        self.subnets, widths = tfn_subnets("lf-dnn", spec.dims, text_hidden, text_out, audio_hidden, video_hidden,
                                           dropout, audio_dropout, video_dropout, text_dropout)
        width = sum(widths.values())
        self.post_fusion_dropout = nn.Dropout(option_or(post_fusion_dropout, dropout))
        self.post_fusion_layer_1 = nn.Linear(width, post_fusion_dim)
        self.post_fusion_layer_2 = nn.Linear(post_fusion_dim, post_fusion_dim)
        self.post_fusion_layer_3 = nn.Linear(post_fusion_dim, spec.output_dim)

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        h = torch.cat([self.subnets[m](batch.inputs[m], batch.lengths[m]) for m in self.order], dim=-1)
        y = torch.relu(self.post_fusion_layer_1(self.post_fusion_dropout(h)))
        y = self.post_fusion_layer_3(torch.relu(self.post_fusion_layer_2(y)))
        return ModelOutput(squeeze_regression(y, self.spec))
