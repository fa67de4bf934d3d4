"""bc-LSTM (Poria et al. 2017, "Context-Dependent Sentiment Analysis in User-Generated Videos",
ACL), as released in declare-lab/conv-emotion (``bc-LSTM-pytorch/model.py``, ``LSTMModel``).

Architecture (the released code): the utterance vectors of a dialogue (the modalities named by
``modalities``, concatenated; the released IEMOCAP and MELD scripts read text only) go through
a ``layers``-layer bidirectional LSTM of width ``hidden`` per direction (dropout ``dropout``
between layers); optionally (``attention``, off in the released scripts) every utterance
attends over the dialogue's LSTM outputs (matching attention,
``softmax_s(tanh((W e_t + b) . e_s))``); then ``ReLU(Linear(2 hidden -> dense))``, dropout, and
the output layer. One prediction per utterance.

Difference from the released code, on purpose: the LSTM runs on packed sequences, so a
dialogue's backward states start at its own last utterance instead of reading the padding of
longer dialogues in the batch (predictions do not depend on the batch). The parameters are
the same.

Defaults (no preset): ``hidden=32``, ``dense=hidden``, ``layers=2``, ``dropout=0.3``, every
modality of the data: small for the CPU, not the paper's configuration. ``preset="iemocap"``
or ``"meld"`` gives the released configurations (text 100 / 600, width 100).
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data.collate import DialogueBatch
from harness.data.types import DataSpec
from harness.layers import MatchingAttention, dialogue_lengths, input_modalities, run_packed
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.options import DropoutRate, PositiveInt
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import Choice, LogUniform, Uniform

_RELEASED = dict(repo="declare-lab/conv-emotion", path="bc-LSTM-pytorch/model.py", commit="6128ca2")
_NOTES = ("LSTMModel on the padded batch in the release; packed here (no padding enters a dialogue's "
          "backward states), same parameters. The release picks its best epoch on the test set; "
          "mcer-bench on validation.")

PRESETS: dict[str, Preset] = {
    "iemocap": Preset(
        options=dict(hidden=100, dense=100, layers=2, dropout=0.25, attention=False, modalities=("text",)),
        dims={"text": 100, "audio": 100, "video": 512}, task="classification", num_classes=6, num_speakers=2,
        recipe=dict(optimizer="adam", lr=1e-4, weight_decay=1e-5, epochs=60, patience=60, dialogue_batch_size=32,
                    grad_clip=None, lr_schedule="constant", class_weights="none"),
        reference=Reference(**_RELEASED, config="train_IEMOCAP.py (argparse defaults; IEMOCAP_features_raw.pkl)",
                            params=423_906,
                            blocks={"lstm": 403_200, "linear": 20_100, "smax_fc": 606},
                            notes=_NOTES + " --class-weight is off by default in train_IEMOCAP.py."),
    ),
    "meld": Preset(
        options=dict(hidden=100, dense=100, layers=2, dropout=0.25, attention=False, modalities=("text",)),
        dims={"text": 600, "audio": 300}, task="classification", num_classes=7, num_speakers=9,
        recipe=dict(optimizer="adam", lr=1e-4, weight_decay=1e-5, epochs=60, patience=60, dialogue_batch_size=32,
                    grad_clip=None, lr_schedule="constant", class_weights="none"),
        reference=Reference(**_RELEASED, config="train_MELD.py (argparse defaults, emotion; MELD_features_raw.pkl)",
                            params=824_007,
                            blocks={"lstm": 803_200, "linear": 20_100, "smax_fc": 707},
                            notes=_NOTES),
    ),
}


@MODELS.register("bc-lstm", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "hidden": Choice([32, 64, 128])},
                 level="dialogue", modalities=["text", "audio", "video"],
                 paper="Poria et al. 2017, Context-Dependent Sentiment Analysis in User-Generated Videos",
                 presets=PRESETS)
class BCLSTM(BenchModel):
    """Bidirectional contextual LSTM over a dialogue's utterance vectors."""

    level = "dialogue"
    pooling = "mean"

    def __init__(self, spec: DataSpec, hidden: PositiveInt = 32, dense: PositiveInt | None = None,
                 layers: PositiveInt = 2, dropout: DropoutRate = 0.3, attention: bool = False,
                 modalities: tuple[str, ...] | list[str] | None = None) -> None:
        super().__init__(spec)
        dense = hidden if dense is None else dense
        self.modalities = input_modalities(spec.dims, modalities, "bc-lstm")
        in_dim = sum(spec.dims[m] for m in self.modalities)
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=layers, bidirectional=True, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.matchatt = MatchingAttention(2 * hidden, tanh=True) if attention else None
        self.linear = nn.Linear(2 * hidden, dense)
        self.dropout = nn.Dropout(dropout)
        self.smax_fc = nn.Linear(dense, spec.output_dim)

    def forward(self, batch: DialogueBatch) -> ModelOutput:
        x = torch.cat([batch.inputs[m] for m in self.modalities], dim=-1)
        emotions = run_packed(self.lstm, x, dialogue_lengths(batch.mask))  # [B, N, 2 hidden]
        if self.matchatt is not None:
            emotions = self.matchatt(emotions, batch.mask)
        hidden = self.dropout(torch.relu(self.linear(emotions)))
        return ModelOutput(squeeze_regression(self.smax_fc(hidden), self.spec))
