"""MMGCN (Hu et al. 2021, "MMGCN: Multimodal Fusion via Deep Graph Convolution Network for
Emotion Recognition in Conversation", ACL).

Architecture as in the paper: modality encoders (a packed bidirectional LSTM over the
dialogue for text, a fully connected layer for audio and video), a learned speaker
embedding added to every node; one graph per dialogue whose nodes are (modality,
utterance) pairs, with edges between all utterances of the same modality and between the
modalities of the same utterance, weighted by angular similarity
``A_ij = 1 - arccos(cos(n_i, n_j)) / pi``. A deep spectral graph network with initial
residual and identity mapping (GCNII, Chen et al. 2020) runs on ``P = D^-1/2 A D^-1/2``:
``H_{l+1} = ReLU(((1 - alpha) P H_l + alpha H_0)((1 - beta_l) I + beta_l W_l))`` with
``beta_l = log(lambda / l + 1)``. Each utterance's node features of every modality (input and
output of the graph network) are concatenated and classified by a two-layer network.

Padding utterances are not nodes (no edges reach them), so predictions do not depend on
the batch. Defaults: ``hidden=32`` (the paper uses 200), ``layers=4`` (the paper's
IEMOCAP setting), ``alpha=0.1``, ``lamda=0.5`` (GCNII's), ``dropout=0.3``; small for the
CPU on small data. Dialogue level.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from harness.data.collate import DialogueBatch
from harness.data.types import DataSpec
from harness.layers import dialogue_lengths
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.registry import MODELS


@MODELS.register("mmgcn", level="dialogue", modalities=["text", "audio", "video"],
                 paper="Hu et al. 2021, MMGCN: Multimodal Fusion via Deep Graph Convolution Network for Emotion "
                       "Recognition in Conversation")
class MMGCN(BenchModel):
    """Multimodal utterance graph with angular-similarity edges and a deep GCNII."""

    level = "dialogue"
    pooling = "mean"

    def __init__(self, spec: DataSpec, hidden: int = 32, layers: int = 4, alpha: float = 0.1, lamda: float = 0.5,
                 dropout: float = 0.3) -> None:
        super().__init__(spec)
        for name, v in (("hidden", hidden), ("layers", layers)):
            if v < 1:
                raise ValueError(f"mmgcn: {name} must be >= 1, got {v}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"mmgcn: alpha must be in [0, 1], got {alpha}")
        if lamda <= 0:
            raise ValueError(f"mmgcn: lamda must be > 0, got {lamda}")
        mods = list(spec.dims)
        self.alpha, self.lamda = alpha, lamda
        self.norms = nn.ModuleDict({m: nn.LayerNorm(d) for m, d in spec.dims.items()})
        self.encoders = nn.ModuleDict({
            m: (nn.LSTM(d, hidden // 2 or 1, batch_first=True, bidirectional=True) if m == "text" else nn.Linear(d, hidden))
            for m, d in spec.dims.items()
        })
        self.enc_out = nn.ModuleDict({
            m: nn.Linear(2 * (hidden // 2 or 1) if m == "text" else hidden, hidden) for m in mods
        })
        self.speaker = nn.Embedding(spec.num_speakers, hidden)
        self.weights = nn.ParameterList([nn.Parameter(torch.empty(hidden, hidden)) for _ in range(layers)])
        for w in self.weights:
            nn.init.uniform_(w, -1.0 / math.sqrt(hidden), 1.0 / math.sqrt(hidden))
        width = 2 * hidden * len(mods)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, spec.output_dim))
        self.dropout = nn.Dropout(dropout)

    def _encode(self, m: str, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.norms[m](x)
        enc = self.encoders[m]
        if isinstance(enc, nn.LSTM):
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = enc(packed)
            x, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            x = enc(x)
        return self.enc_out[m](x)

    def forward(self, batch: DialogueBatch) -> ModelOutput:
        mods = list(self.spec.dims)
        mask = batch.mask
        if int(batch.speakers.max()) >= self.spec.num_speakers:
            raise ValueError(f"mmgcn: speaker id {int(batch.speakers.max())} >= spec.num_speakers={self.spec.num_speakers}")
        lengths = dialogue_lengths(mask)
        spk = self.speaker(batch.speakers)
        nodes = torch.cat([self._encode(m, batch.inputs[m], lengths) + spk for m in mods], dim=1)  # [B, M*N, h]
        b, n = mask.shape
        k = len(mods)
        real = mask.repeat(1, k)  # [B, M*N]
        mod_id = torch.arange(k, device=nodes.device).repeat_interleave(n)
        utt_id = torch.arange(n, device=nodes.device).repeat(k)
        structure = (mod_id[:, None] == mod_id[None, :]) | (utt_id[:, None] == utt_id[None, :])
        edges = structure[None] & real[:, :, None] & real[:, None, :]
        unit = F.normalize(nodes, dim=-1, eps=1e-6)
        cos = torch.einsum("bid,bjd->bij", unit, unit).clamp(-1 + 1e-6, 1 - 1e-6)
        adj = (1 - torch.arccos(cos) / math.pi) * edges
        deg = adj.sum(-1).clamp(min=1e-6).rsqrt()
        p = deg[:, :, None] * adj * deg[:, None, :]
        h0 = self.dropout(nodes)
        h = h0
        for layer, w in enumerate(self.weights, start=1):
            beta = math.log(self.lamda / layer + 1)
            support = (1 - self.alpha) * torch.einsum("bij,bjd->bid", p, h) + self.alpha * h0
            h = torch.relu((1 - beta) * support + beta * support @ w.to(support.dtype))
            h = self.dropout(h)
        feats = torch.cat([h0, h], dim=-1).view(b, k, n, -1).permute(0, 2, 1, 3).reshape(b, n, -1)
        return ModelOutput(squeeze_regression(self.classifier(feats), self.spec))
