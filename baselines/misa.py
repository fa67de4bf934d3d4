"""MISA (Hazarika et al. 2020, "MISA: Modality-Invariant and -Specific Representations for
Multimodal Sentiment Analysis", ACM Multimedia), as configured and implemented in MMSA
(thuiar/MMSA ``MISA``, after declare-lab/MISA).

Architecture (the reference code), with precomputed text features in place of BERT:

* text: the mean of the real frames (MMSA: the masked mean of BERT's last hidden states), then
  ``project`` = Linear to ``hidden``, ReLU, LayerNorm;
* audio/video: two stacked bidirectional LSTMs with a LayerNorm between them (the first LSTM's
  outputs are normalised, then fed to the second), both ``audio_rnn_hidden`` / ``video_rnn_hidden``
  wide (the reference uses the input width); the utterance vector is the final states
  ``[h1_fwd, h2_fwd, h1_bwd, h2_bwd]``, then Linear to ``hidden``, ReLU, LayerNorm;
* a **shared encoder** (one Linear+Sigmoid for every modality) and a **private encoder** per
  modality give invariant and specific vectors; a decoder per modality reconstructs the
  projected vector from their sum;
* fusion: the 2M vectors (private text, video, audio, then shared) form a short sequence through
  one ``nn.TransformerEncoderLayer`` (post-LayerNorm, ``heads`` heads, feed-forward ``ff_dim``,
  dropout ``fusion_dropout``), are concatenated and mapped by Linear to ``M * hidden``, dropout,
  ReLU and Linear to the output.

Training objective (returned weighted in ``ModelOutput.aux_loss``): ``sim_weight`` x CMD
(5 moments, mean over the modality pairs of shared vectors) + ``diff_weight`` x the soft
orthogonality of private/shared and private/private pairs (zero-mean vectors divided by their
*detached* L2 norms, as the reference) + ``recon_weight`` x the mean reconstruction MSE. The
task loss is L1 or, with ``regression_loss="mse"``, MSE as MMSA's trainer uses.

``encoder_lengths="text"`` packs audio and video with the *text* lengths, as MMSA does (it
reads the BERT mask's length for every modality); ``"own"`` uses each modality's length.
Frames beyond a modality's own length are zeros there, as in MMSA's zero-padded tensors.

Not reproduced: BERT itself (the harness takes its 768-d features), MMSA's unused
``tlayer_norm`` and its ``sp_discriminator``, whose output enters no loss.

Defaults (no preset): small for the CPU, not the paper's: ``hidden=32``, audio/video LSTMs 16
wide (the reference: as wide as their inputs, which the presets set), ``heads=2``, ``ff_dim=64``, ``dropout=0.3``, ``fusion_dropout=0.1``,
weights (1.0, 0.3, 1.0), L1 task loss, own lengths. Presets ``mosi``, ``mosei``, ``sims``
reproduce MMSA's ``config_regression.json``. Utterance level.
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import reference_order
from harness.models import BenchModel, ModelOutput, masked_mean, squeeze_regression
from harness.options import DropoutRate, NonNegativeFloat, PositiveInt
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import Choice, LogUniform, Uniform

LossWeight = NonNegativeFloat
"""The weight of one of MISA's auxiliary losses (similarity, difference, reconstruction)."""


def cmd(x1: torch.Tensor, x2: torch.Tensor, moments: int = 5) -> torch.Tensor:
    """Central moment discrepancy (Zellinger et al. 2017) between ``[B, D]`` samples."""
    m1, m2 = x1.mean(0), x2.mean(0)
    c1, c2 = x1 - m1, x2 - m2
    total = torch.linalg.vector_norm(m1 - m2)
    for k in range(2, moments + 1):
        total = total + torch.linalg.vector_norm((c1**k).mean(0) - (c2**k).mean(0))
    return total


def difference(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Soft orthogonality ``mean((X1^T X2)^2)`` of zero-mean ``[B, D]`` samples, each row divided
    by its L2 norm (+1e-6). The norms are detached, as in the reference: the gradient does not
    flow through the normalisation."""
    x1 = x1 - x1.mean(0, keepdim=True)
    x2 = x2 - x2.mean(0, keepdim=True)
    x1 = x1 / (torch.linalg.vector_norm(x1, dim=1, keepdim=True).detach() + 1e-6)
    x2 = x2 / (torch.linalg.vector_norm(x2, dim=1, keepdim=True).detach() + 1e-6)
    return (x1.t() @ x2).pow(2).mean()


class StackedBiLSTM(nn.Module):
    """MISA's audio/visual encoder: BiLSTM, LayerNorm over its outputs, BiLSTM, over the first
    ``lengths[b]`` frames (packed). ``[B, T, D]`` -> ``[B, 4*hidden]`` = ``[h1_fwd, h2_fwd, h1_bwd, h2_bwd]``."""

    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.rnn1 = nn.LSTM(in_dim, hidden, bidirectional=True, batch_first=True)
        self.norm = nn.LayerNorm(2 * hidden)
        self.rnn2 = nn.LSTM(2 * hidden, hidden, bidirectional=True, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.clamp(min=1).cpu()
        if x.shape[1] < int(lengths.max()):
            x = F.pad(x, (0, 0, 0, int(lengths.max()) - x.shape[1]))
        out1, (h1, _) = self.rnn1(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        padded, _ = pad_packed_sequence(out1, batch_first=True)
        _, (h2, _) = self.rnn2(pack_padded_sequence(self.norm(padded), lengths, batch_first=True, enforce_sorted=False))
        return torch.cat([h1, h2], dim=2).permute(1, 0, 2).reshape(x.shape[0], -1)


_MMSA = dict(repo="thuiar/MMSA", path="src/MMSA/models/singleTask/MISA.py", commit="a94e65d")
_BLOCKS = {"vrnn1": ("encoders.video.rnn1",), "vrnn2": ("encoders.video.rnn2",), "vlayer_norm": ("encoders.video.norm",),
           "arnn1": ("encoders.audio.rnn1",), "arnn2": ("encoders.audio.rnn2",), "alayer_norm": ("encoders.audio.norm",),
           "project_t": ("project.text",), "project_v": ("project.video",), "project_a": ("project.audio",),
           "private_t": ("private.text",), "private_v": ("private.video",), "private_a": ("private.audio",),
           "shared": ("shared",), "recon_t": ("decoders.text",), "recon_v": ("decoders.video",),
           "recon_a": ("decoders.audio",), "fusion": ("fusion",), "transformer_encoder": ("transformer_encoder",)}
_NOTES = ("BERT-base excluded (precomputed 768-d features, masked mean, then project_t). Counted: parameters reaching the "
          "prediction or the training loss; MMSA also creates tlayer_norm (3,072, never called) and sp_discriminator "
          "(4*hidden+4, called but its output enters no loss). MMSA trains with update_epochs=2 gradient accumulation "
          "and clip_grad_value_ on the running sum; the recipe takes 2 x its batch per step and clips the mean gradient "
          "at grad_clip/2 (the same step under Adam's scale invariance). Its Adam gets no weight decay although the "
          "config names one. Selection: validation MSE loss in MMSA, MAE here; early stop 8, no epoch limit.")


def _preset(ds: str, dims: dict, drop: float, diff: float, sim: float, recon: float, bs: int, clip: float, params: int,
            blocks: dict, created: int) -> Preset:
    return Preset(
        options=dict(hidden=128, audio_rnn_hidden=dims["audio"], video_rnn_hidden=dims["video"], heads=2, ff_dim=2048,
                     dropout=drop, fusion_dropout=0.1, sim_weight=sim, diff_weight=diff, recon_weight=recon,
                     regression_loss="mse", encoder_lengths="text"),
        dims=dims, task="regression",
        recipe=dict(optimizer="adam", lr=1e-4, weight_decay=0.0, batch_size=2 * bs, epochs=200, patience=8,
                    grad_clip=clip / 2, grad_clip_mode="value", lr_schedule="constant", selection_metric="mae"),
        reference=Reference(**_MMSA, config=f"src/MMSA/config/config_regression.json: misa.commonParams + datasetParams.{ds}",
                            params=params, created_params=created, blocks=blocks, notes=_NOTES),
        blocks=_BLOCKS,
        notes=f"MMSA: batch {bs} x update_epochs 2, clip value {clip}; the fusion layer's dropout 0.1 and feed-forward "
              "2048 are nn.TransformerEncoderLayer's defaults; the audio/video LSTMs are as wide as their inputs.",
    )


def _counts(v1: int, v2: int, a1: int, a2: int, pv: int, pa: int, vn: int, an: int) -> dict[str, int]:
    out = {"vrnn1": v1, "vrnn2": v2, "arnn1": a1, "arnn2": a2, "project_t": 98_688, "project_v": pv, "project_a": pa}
    out.update({k: 16_512 for k in ("private_t", "private_v", "private_a", "shared", "recon_t", "recon_v", "recon_a")})
    out.update(fusion=295_681, vlayer_norm=vn, alayer_norm=an, transformer_encoder=593_024)
    return out


MISA_PRESETS: dict[str, Preset] = {
    "mosi": _preset("mosi", {"text": 768, "audio": 5, "video": 20}, 0.2, 0.1, 0.3, 1.0, 16, 0.8, 1_134_445,
                    _counts(6_720, 9_920, 480, 680, 10_624, 2_944, 80, 20), 1_138_033),
    "mosei": _preset("mosei", {"text": 768, "audio": 74, "video": 35}, 0.5, 0.3, 0.8, 1.0, 64, 0.8, 1_431_517,
                     _counts(20_160, 29_960, 88_800, 132_608, 18_304, 38_272, 140, 296), 1_435_105),
    "sims": _preset("sims", {"text": 768, "audio": 33, "video": 709}, 0.0, 0.3, 1.0, 0.8, 64, 1.0, 21_661_161,
                    _counts(8_054_240, 12_075_688, 17_952, 26_664, 363_392, 17_280, 2_836, 132), 21_664_749),
}


@MODELS.register("misa", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "hidden": Choice([32, 64]), "diff_weight": Uniform(0.1, 1.0)},
                 level="utterance", modalities=["text", "audio", "video"],
                 paper="Hazarika et al. 2020, MISA: Modality-Invariant and -Specific Representations for "
                       "Multimodal Sentiment Analysis",
                 presets=MISA_PRESETS)
class MISA(BenchModel):
    """Shared and private subspaces per modality, transformer fusion, CMD/difference/reconstruction losses."""

    level = "utterance"

    def __init__(self, spec: DataSpec,
                 hidden: PositiveInt = 32, audio_rnn_hidden: PositiveInt = 16, video_rnn_hidden: PositiveInt = 16,
                 heads: PositiveInt = 2, ff_dim: PositiveInt = 64,  # sizes
                 dropout: DropoutRate = 0.3, fusion_dropout: DropoutRate = 0.1,
                 sim_weight: LossWeight = 1.0, diff_weight: LossWeight = 0.3, recon_weight: LossWeight = 1.0,
                 regression_loss: Literal["l1", "mse"] = "l1", encoder_lengths: Literal["own", "text"] = "own") -> None:
        super().__init__(spec)
        if hidden % heads:
            raise ValueError(f"misa: hidden ({hidden}) must be divisible by heads ({heads})")
        if encoder_lengths == "text" and "text" not in spec.dims:
            raise ValueError("misa: encoder_lengths='text' needs a text modality")
        rnn_hidden = {"audio": audio_rnn_hidden, "video": video_rnn_hidden}
        self.mods = reference_order(list(spec.dims), ("text", "video", "audio"))
        self.weights = (sim_weight, diff_weight, recon_weight)
        self.regression_loss, self.encoder_lengths = regression_loss, encoder_lengths
        self.encoders = nn.ModuleDict({m: StackedBiLSTM(d, rnn_hidden.get(m, d))
                                       for m, d in spec.dims.items() if m != "text"})
        width = {m: d if m == "text" else 4 * rnn_hidden.get(m, d) for m, d in spec.dims.items()}
        self.project = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(width[m], hidden), nn.ReLU(), nn.LayerNorm(hidden)) for m in self.mods
        })
        self.private = nn.ModuleDict({m: nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid()) for m in self.mods})
        self.shared = nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid())
        self.decoders = nn.ModuleDict({m: nn.Linear(hidden, hidden) for m in self.mods})
        self.transformer_encoder = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=ff_dim,
                                                              dropout=fusion_dropout, batch_first=True)
        n = len(self.mods)
        self.fusion = nn.Sequential(nn.Linear(2 * n * hidden, n * hidden), nn.Dropout(dropout), nn.ReLU(),
                                    nn.Linear(n * hidden, spec.output_dim))

    def _utterance(self, batch: UtteranceBatch, m: str) -> torch.Tensor:
        if m == "text":
            return masked_mean(batch.inputs[m], batch.lengths[m])
        lengths = batch.lengths["text" if self.encoder_lengths == "text" else m]
        return self.encoders[m](batch.inputs[m], lengths)

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        u = {m: self.project[m](self._utterance(batch, m)) for m in self.mods}
        hc = {m: self.shared(u[m]) for m in self.mods}
        hp = {m: self.private[m](u[m]) for m in self.mods}
        tokens = torch.stack([hp[m] for m in self.mods] + [hc[m] for m in self.mods], dim=1)  # [B, 2M, h]
        fused = self.transformer_encoder(tokens).flatten(1)
        prediction = squeeze_regression(self.fusion(fused), self.spec)
        aux = None
        if self.training:
            pairs = list(itertools.combinations(self.mods, 2))
            sim = sum((cmd(hc[a], hc[b]) for a, b in pairs), tokens.new_zeros(())) / max(len(pairs), 1)
            diff = sum((difference(hp[m], hc[m]) for m in self.mods), tokens.new_zeros(()))
            diff = diff + sum((difference(hp[a], hp[b]) for a, b in pairs), tokens.new_zeros(()))
            recon = sum(F.mse_loss(self.decoders[m](hc[m] + hp[m]), u[m]) for m in self.mods) / len(self.mods)
            ws, wd, wr = self.weights
            aux = ws * sim + wd * diff + wr * recon
        return ModelOutput(prediction, aux_loss=aux)

    def task_loss(self, prediction: torch.Tensor, batch: UtteranceBatch,
                  class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """L1 (the harness default) or, with ``regression_loss="mse"``, MSE for regression; cross-entropy otherwise."""
        if self.spec.task == "regression" and self.regression_loss == "mse":
            assert batch.scores is not None
            return F.mse_loss(prediction.float().reshape(-1), batch.scores)
        return super().task_loss(prediction, batch, class_weights)
