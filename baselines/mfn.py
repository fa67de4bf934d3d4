"""Memory Fusion Network (Zadeh et al. 2018, "Memory Fusion Network for Multi-view Sequential
Learning", AAAI), as configured and implemented in MMSA (thuiar/MMSA ``MFN``).

Architecture (the reference code), on ``align_len`` aligned steps:

* **System of LSTMs**: one LSTM cell per modality, widths ``text_hidden``, ``audio_hidden``,
  ``video_hidden`` (no input normalisation);
* **Delta-memory attention**: at each step the cell states of the previous and the current
  step of all LSTMs, ``c* = [c_{t-1}; c_t]`` (text, audio, video), get softmax attention
  ``a = softmax(att1(c*))`` and ``attended = a * c*``, where ``att1`` is Linear to
  ``att1_hidden``, ReLU, dropout, Linear back;
* **Multi-view gated memory** of width ``mem``: the proposal ``u = tanh(att2(attended))`` and
  the gates ``g_i = sigmoid(gamma_i([attended; mem]))``, each a Linear-ReLU-dropout-Linear
  network of its own width (``att2_hidden``, ``gamma1_hidden``, ``gamma2_hidden``) and dropout;
  ``mem <- g1 * mem + g2 * u``;
* output: ``[h_text; h_audio; h_video; mem]`` of the last step through Linear to
  ``out_hidden``, ReLU, dropout, Linear.

Aligned steps: the harness holds unaligned features, so each modality's real frames are
linearly resampled to ``align_len`` steps (MMSA reads word-aligned features padded to 50 steps).
MMSA's configuration also averages audio and video over time before the model
(``need_normalized``) and repeats that mean at every step; ``averaged_modalities`` names the
modalities treated so (the presets: audio and video; the paper's form: none).
The window is two steps (previous and current), as the reference code hard-wires.
Every sample is exactly ``align_len`` steps long, so predictions do not depend on the batch.

Defaults (no preset): small for the CPU, not the paper's: ``text_hidden=16, audio_hidden=8,
video_hidden=8, mem=32``, every attention/gate/output network 32 wide, ``align_len=16``,
dropout 0.2, no averaged modality. Presets ``mosi``, ``mosei``, ``sims`` reproduce MMSA's
``config_regression.json``. Utterance level.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import modality_sizes, option_or, reference_order, resample
from harness.models import BenchModel, ModelOutput, masked_mean, squeeze_regression
from harness.options import DropoutRate, PositiveInt
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import Choice, LogUniform, Uniform

_MMSA = dict(repo="thuiar/MMSA", path="src/MMSA/models/singleTask/MFN.py", commit="a94e65d")
_BLOCKS = {"lstm_l": ("cells.text",), "lstm_a": ("cells.audio",), "lstm_v": ("cells.video",),
           "att1_fc1": ("att1.0",), "att1_fc2": ("att1.3",), "att2_fc1": ("att2.0",), "att2_fc2": ("att2.3",),
           "gamma1_fc1": ("gamma1.0",), "gamma1_fc2": ("gamma1.3",), "gamma2_fc1": ("gamma2.0",),
           "gamma2_fc2": ("gamma2.3",), "out_fc1": ("out.0",), "out_fc2": ("out.3",)}
_NOTES = ("Not reproduced: word alignment (text is resampled to the aligned length instead of 50 zero-padded word "
          "steps; SIMS has 39 steps); MMSA's audio/video means divide by the padded length, here by the real one. "
          "MMSA selects on the validation L1 loss (= MAE) with early stop 8 and no epoch limit.")


def _net(i: int, h: int, o: int, dropout: float) -> nn.Sequential:
    """Linear-ReLU-dropout-Linear, MFN's form for its attention, gate and output networks."""
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Dropout(dropout), nn.Linear(h, o))


def _preset(ds: str, dims: dict, align_len: int, hidden: tuple, mem: int, nets: dict, bs: int, lr: float, wd: float,
            params: int, blocks: dict) -> Preset:
    t, a, v = hidden
    options = dict(text_hidden=t, audio_hidden=a, video_hidden=v, mem=mem, align_len=align_len,
                   averaged_modalities=("audio", "video"))
    for key, (width, drop) in nets.items():
        options[f"{key}_hidden"], options[f"{key}_dropout"] = width, drop
    return Preset(
        options=options, dims=dims, task="regression",
        recipe=dict(optimizer="adam", lr=lr, weight_decay=wd, batch_size=bs, epochs=200, patience=8, grad_clip=None,
                    lr_schedule="constant", selection_metric="mae"),
        reference=Reference(**_MMSA, config=f"src/MMSA/config/config_regression.json: mfn.commonParams + datasetParams.{ds}",
                            params=params, blocks=blocks, notes=_NOTES),
        blocks=_BLOCKS,
        notes="NN1Config -> att1, NN2Config -> att2, gamma1Config/gamma2Config -> gamma1/gamma2, outConfig -> out.",
    )


MFN_PRESETS: dict[str, Preset] = {
    "mosi": _preset("mosi", {"text": 768, "audio": 5, "video": 20}, 50, (256, 32, 256), 400,
                    {"att1": (32, 0.2), "att2": (64, 0.0), "gamma1": (256, 0.7), "gamma2": (32, 0.5), "out": (128, 0.0)},
                    128, 2e-3, 0.0, 2_172_657,
                    {"lstm_l": 1_050_624, "lstm_a": 4_992, "lstm_v": 284_672, "att1_fc1": 34_848, "att1_fc2": 35_904,
                     "att2_fc1": 69_696, "att2_fc2": 26_000, "gamma1_fc1": 381_184, "gamma1_fc2": 102_800,
                     "gamma2_fc1": 47_648, "gamma2_fc2": 13_200, "out_fc1": 120_960, "out_fc2": 129}),
    "mosei": _preset("mosei", {"text": 768, "audio": 74, "video": 35}, 50, (128, 32, 128), 128,
                     {"att1": (128, 0.2), "att2": (128, 0.5), "gamma1": (256, 0.7), "gamma2": (256, 0.0),
                      "out": (128, 0.5)},
                     64, 5e-4, 1e-4, 1_276_865,
                     {"lstm_l": 459_776, "lstm_a": 13_824, "lstm_v": 84_480, "att1_fc1": 73_856, "att1_fc2": 74_304,
                      "att2_fc1": 73_856, "att2_fc2": 16_512, "gamma1_fc1": 180_480, "gamma1_fc2": 32_896,
                      "gamma2_fc1": 180_480, "gamma2_fc2": 32_896, "out_fc1": 53_376, "out_fc2": 129}),
    "sims": _preset("sims", {"text": 768, "audio": 33, "video": 709}, 39, (64, 16, 64), 64,
                    {"att1": (128, 0.2), "att2": (128, 0.0), "gamma1": (64, 0.2), "gamma2": (64, 0.7), "out": (64, 0.7)},
                    32, 1e-3, 0.0, 601_505,
                    {"lstm_l": 213_504, "lstm_a": 3_264, "lstm_v": 198_400, "att1_fc1": 36_992, "att1_fc2": 37_152,
                     "att2_fc1": 36_992, "att2_fc2": 8_256, "gamma1_fc1": 22_592, "gamma1_fc2": 4_160,
                     "gamma2_fc1": 22_592, "gamma2_fc2": 4_160, "out_fc1": 13_376, "out_fc2": 65}),
}


@MODELS.register("mfn", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "mem": Choice([16, 32, 64])},
                 level="utterance", modalities=["text", "audio", "video"],
                 paper="Zadeh et al. 2018, Memory Fusion Network for Multi-view Sequential Learning",
                 presets=MFN_PRESETS)
class MFN(BenchModel):
    """LSTM per modality, delta-memory attention over cell states, multi-view gated memory."""

    level = "utterance"

    def __init__(self, spec: DataSpec, text_hidden: PositiveInt = 16, audio_hidden: PositiveInt = 8,
                 video_hidden: PositiveInt = 8, mem: PositiveInt = 32, att1_hidden: PositiveInt = 32,
                 att2_hidden: PositiveInt = 32, gamma1_hidden: PositiveInt = 32, gamma2_hidden: PositiveInt = 32,
                 out_hidden: PositiveInt = 32, align_len: PositiveInt = 16, dropout: DropoutRate = 0.2,
                 att1_dropout: DropoutRate | None = None, att2_dropout: DropoutRate | None = None,
                 gamma1_dropout: DropoutRate | None = None, gamma2_dropout: DropoutRate | None = None,
                 out_dropout: DropoutRate | None = None, averaged_modalities: tuple[str, ...] | list[str] = ()) -> None:
        super().__init__(spec)
        hidden = modality_sizes("mfn", spec.dims, text_hidden=text_hidden, audio_hidden=audio_hidden,
                                video_hidden=video_hidden)
        unknown = [m for m in averaged_modalities if m not in spec.dims]
        if unknown:
            raise ValueError(f"mfn: averaged_modalities {unknown} are not modalities of the data ({list(spec.dims)})")
        drop = {k: option_or(p, dropout) for k, p in
                (("att1", att1_dropout), ("att2", att2_dropout), ("gamma1", gamma1_dropout),
                 ("gamma2", gamma2_dropout), ("out", out_dropout))}
        self.order = reference_order(list(spec.dims), ("text", "audio", "video"))
        self.hidden, self.mem, self.align_len = hidden, mem, align_len
        self.averaged = tuple(averaged_modalities)
        self.cells = nn.ModuleDict({m: nn.LSTMCell(spec.dims[m], hidden[m]) for m in self.order})
        cstar = 2 * sum(hidden.values())  # window of two steps
        self.att1 = _net(cstar, att1_hidden, cstar, drop["att1"])
        self.att2 = _net(cstar, att2_hidden, mem, drop["att2"])
        self.gamma1 = _net(cstar + mem, gamma1_hidden, mem, drop["gamma1"])
        self.gamma2 = _net(cstar + mem, gamma2_hidden, mem, drop["gamma2"])
        self.out = _net(sum(hidden.values()) + mem, out_hidden, spec.output_dim, drop["out"])

    def _steps(self, batch: UtteranceBatch, m: str) -> torch.Tensor:
        x, lengths = batch.inputs[m], batch.lengths[m]
        if m in self.averaged:
            return masked_mean(x, lengths).unsqueeze(1).expand(-1, self.align_len, -1)
        return resample(x, lengths, self.align_len)

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        xs = {m: self._steps(batch, m) for m in self.order}
        ref = xs[self.order[0]]
        b = ref.shape[0]
        h = {m: ref.new_zeros(b, self.hidden[m]) for m in self.order}
        c = {m: ref.new_zeros(b, self.hidden[m]) for m in self.order}
        mem = ref.new_zeros(b, self.mem)
        for t in range(self.align_len):
            prev = [c[m] for m in self.order]
            for m in self.order:
                h[m], c[m] = self.cells[m](xs[m][:, t], (h[m], c[m]))
            cstar = torch.cat(prev + [c[m] for m in self.order], dim=-1)
            attended = torch.softmax(self.att1(cstar), dim=-1) * cstar
            proposal = torch.tanh(self.att2(attended))
            both = torch.cat([attended, mem], dim=-1)
            mem = torch.sigmoid(self.gamma1(both)) * mem + torch.sigmoid(self.gamma2(both)) * proposal
        final = torch.cat([h[m] for m in self.order] + [mem], dim=-1)
        return ModelOutput(squeeze_regression(self.out(final), self.spec))
