"""Early fusion with an LSTM (EF-LSTM), as configured and implemented in MMSA (thuiar/MMSA
``EF_LSTM``; after Williams et al. 2018 and Yu et al.'s MMSA benchmark).

Architecture (the reference code): the modalities are concatenated step by step on aligned
sequences of ``align_len`` steps (text, audio, video), normalised by a BatchNorm over *time*
(one channel per step, statistics over the batch and the features, as MMSA's
``BatchNorm1d(seq_len)``), passed through a unidirectional ``layers``-layer LSTM of width
``hidden`` (dropout between layers), and the last layer's final hidden state goes through
dropout, Linear + ReLU, dropout and a linear output layer.

Aligned steps: the harness holds unaligned features, so each modality's real frames are
linearly resampled to ``align_len`` steps (MMSA reads word-aligned features padded to 50 steps;
SIMS, which has no aligned set, is average-pooled to its 39 text steps). Every sample is then
exactly ``align_len`` steps long, so predictions do not depend on the batch (in evaluation;
BatchNorm uses batch statistics while training).

Defaults (no preset): small for the CPU, not the paper's: ``hidden=64, layers=1,
align_len=16, dropout=0.2``. Presets ``mosi``, ``mosei``, ``sims`` reproduce MMSA's
``config_regression.json``. Utterance level.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import reference_order, resample
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.options import DropoutRate, PositiveInt
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import Choice, LogUniform, Uniform

_MMSA = dict(repo="thuiar/MMSA", path="src/MMSA/models/singleTask/EF_LSTM.py", commit="a94e65d")
_NOTES = ("Not reproduced: word alignment (each modality's frames are resampled to the aligned length instead; MMSA "
          "steps through 50 word-aligned, zero-padded steps, SIMS through 39 steps with audio/video average-pooled to "
          "them). MMSA selects on the validation L1 loss (= MAE) with early stop 8 and no epoch limit.")


def _preset(ds: str, dims: dict, align_len: int, hidden: int, layers: int, drop: float, bs: int, lr: float, wd: float,
            params: int, blocks: dict) -> Preset:
    return Preset(
        options=dict(hidden=hidden, layers=layers, dropout=drop, align_len=align_len),
        dims=dims, task="regression",
        recipe=dict(optimizer="adam", lr=lr, weight_decay=wd, batch_size=bs, epochs=200, patience=8, grad_clip=None,
                    lr_schedule="constant", selection_metric="mae"),
        reference=Reference(**_MMSA,
                            config=f"src/MMSA/config/config_regression.json: ef_lstm.commonParams + datasetParams.{ds}",
                            params=params, blocks=blocks, notes=_NOTES),
    )


EF_LSTM_PRESETS: dict[str, Preset] = {
    "mosi": _preset("mosi", {"text": 768, "audio": 5, "video": 20}, 50, 128, 4, 0.5, 32, 1e-3, 5e-3, 885_605,
                    {"norm": 100, "lstm": 868_864, "linear": 16_512, "out": 129}),
    "mosei": _preset("mosei", {"text": 768, "audio": 74, "video": 35}, 50, 256, 2, 0.4, 128, 5e-3, 1e-4, 1_754_725,
                     {"norm": 100, "lstm": 1_688_576, "linear": 65_792, "out": 257}),
    "sims": _preset("sims", {"text": 768, "audio": 33, "video": 709}, 39, 32, 3, 0.5, 128, 5e-4, 1e-3, 215_695,
                    {"norm": 78, "lstm": 214_528, "linear": 1_056, "out": 33}),
}


@MODELS.register("early-fusion", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "hidden": Choice([32, 64, 128])},
                 level="utterance", modalities=["text", "audio", "video"],
                 paper="EF-LSTM (Williams et al. 2018; MMSA's EF_LSTM)", presets=EF_LSTM_PRESETS)
class EarlyFusion(BenchModel):
    """Step-wise concatenation of all modalities, BatchNorm over time, a stacked LSTM."""

    level = "utterance"

    def __init__(self, spec: DataSpec, hidden: PositiveInt = 64, layers: PositiveInt = 1, align_len: PositiveInt = 16,
                 dropout: DropoutRate = 0.2) -> None:
        super().__init__(spec)
        self.align_len = align_len
        self.order = reference_order(list(spec.dims), ("text", "audio", "video"))
        self.norm = nn.BatchNorm1d(align_len)
        self.lstm = nn.LSTM(sum(spec.dims.values()), hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, spec.output_dim)

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        joint = torch.cat([resample(batch.inputs[m], batch.lengths[m], self.align_len) for m in self.order], dim=-1)
        _, (h, _) = self.lstm(self.norm(joint))  # BatchNorm1d over [B, T, D]: the T steps are its channels
        y = self.dropout(torch.relu(self.linear(self.dropout(h[-1]))))
        return ModelOutput(squeeze_regression(self.out(y), self.spec))
