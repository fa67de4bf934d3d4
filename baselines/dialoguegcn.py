"""DialogueGCN (Ghosal et al. 2019, "DialogueGCN: A Graph Convolutional Neural Network for
Emotion Recognition in Conversation", EMNLP).

Architecture as in the paper: a **sequential context encoder** (bidirectional GRU over the
dialogue's utterance vectors, packed so padding is never read) gives ``g_i``; a directed
graph links each utterance to the utterances within ``window`` steps before and after it
(the paper's p = f window), each edge typed by (speaker of i, speaker of j, j before/at or
after i), i.e. ``2 S^2`` relations; edge weights are an attention
``alpha_ij = softmax_{j in window}(g_i^T W_e g_j)``. The **speaker-level context encoder**
is two graph convolutions: a relational one
``h1_i = ReLU(sum_r sum_{j in N_i^r} alpha_ij / |N_i^r| W_r g_j + alpha_ii W_0 g_i)`` and a
plain one ``h2_i = ReLU(sum_{j in N_i} W h1_j + W_0' h1_i)``; ``[g_i; h2_i]`` goes to a ReLU
layer and the output layer. The paper's optional attention of the classifier over the
whole dialogue (``nodal_attention``, off by default as in the authors' released code; here
scaled by 1/sqrt(width)) is available: unscaled, it saturates and gives every utterance of
a dialogue the same prediction.

Padding utterances are not graph nodes (no edge reaches them) and the attention masks them
out, so predictions do not depend on the batch. Relations that do not occur in a batch get
zero (not missing) gradients, because all relation weights act through one dense product.

Defaults: ``hidden=32`` (the paper uses 100..200), ``window=10`` (the paper's p = f = 10),
``dropout=0.3``. Dialogue level.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from harness.data.collate import DialogueBatch
from harness.data.types import DataSpec
from harness.layers import dialogue_lengths
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.registry import MODELS


@MODELS.register("dialoguegcn", level="dialogue", modalities=["text", "audio", "video"],
                 paper="Ghosal et al. 2019, DialogueGCN: A Graph Convolutional Neural Network for Emotion "
                       "Recognition in Conversation")
class DialogueGCN(BenchModel):
    """Sequential BiGRU encoder, relational graph over speaker and temporal relations, windowed."""

    level = "dialogue"
    pooling = "mean"

    def __init__(self, spec: DataSpec, hidden: int = 32, window: int = 10, dropout: float = 0.3,
                 nodal_attention: bool = False) -> None:
        super().__init__(spec)
        if hidden < 1:
            raise ValueError(f"dialoguegcn: hidden must be >= 1, got {hidden}")
        if window < 0:
            raise ValueError(f"dialoguegcn: window must be >= 0, got {window}")
        total = sum(spec.dims.values())
        self.window = window
        self.num_relations = 2 * spec.num_speakers**2
        self.norms = nn.ModuleDict({m: nn.LayerNorm(d) for m, d in spec.dims.items()})  # per modality: scales differ
        self.gru = nn.GRU(total, hidden, batch_first=True, bidirectional=True)
        g = 2 * hidden
        self.edge_attn = nn.Linear(g, g, bias=False)  # W_e
        self.rel_weight = nn.Parameter(torch.empty(self.num_relations, g, hidden))  # W_r
        nn.init.xavier_uniform_(self.rel_weight.view(-1, hidden))
        self.self_weight = nn.Linear(g, hidden, bias=False)  # W_0
        self.gc_neigh = nn.Linear(hidden, hidden)  # W
        self.gc_self = nn.Linear(hidden, hidden, bias=False)  # W_0'
        feat = g + hidden
        self.nodal_attention = bool(nodal_attention)
        # W_beta exists only with nodal attention, so no parameter is left without a gradient
        self.cls_attn = nn.Linear(feat, feat, bias=False) if self.nodal_attention else nn.Identity()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(feat, hidden), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, spec.output_dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch: DialogueBatch) -> ModelOutput:
        mask = batch.mask
        x = torch.cat([self.norms[m](batch.inputs[m]) for m in self.spec.dims], dim=-1)
        b, n, _ = x.shape
        packed = pack_padded_sequence(x, dialogue_lengths(mask).cpu(), batch_first=True, enforce_sorted=False)
        g, _ = self.gru(packed)
        g, _ = pad_packed_sequence(g, batch_first=True, total_length=n)
        g = self.dropout(g)  # [B, N, 2h]

        s = self.spec.num_speakers
        spk = batch.speakers
        if int(spk.max()) >= s:
            raise ValueError(f"dialoguegcn: speaker id {int(spk.max())} >= spec.num_speakers={s}")
        idx = torch.arange(n, device=x.device)
        offset = idx[None, :] - idx[:, None]  # j - i
        edges = (offset.abs() <= self.window)[None] & mask[:, :, None] & mask[:, None, :]  # [B, i, j]
        future = (offset > 0).long()[None]
        rel = (spk[:, :, None] * s + spk[:, None, :]) * 2 + future  # [B, i, j]

        scores = torch.einsum("bid,bjd->bij", self.edge_attn(g), g)
        scores = scores.masked_fill(~edges, torch.finfo(scores.dtype).min)
        alpha = torch.softmax(scores, dim=-1) * edges  # rows of padding nodes are all zero

        onehot = nn.functional.one_hot(rel, self.num_relations).to(g.dtype) * edges[..., None]  # [B, i, j, R]
        counts = onehot.sum(2, keepdim=True).clamp(min=1)  # |N_i^r|
        weights = alpha[..., None] * onehot / counts  # [B, i, j, R]
        msgs = torch.einsum("bjd,rdh->bjrh", g, self.rel_weight.to(g.dtype))  # W_r g_j
        diag = torch.diagonal(alpha, dim1=1, dim2=2)[..., None]  # alpha_ii
        h1 = torch.relu(torch.einsum("bijr,bjrh->bih", weights, msgs) + diag * self.self_weight(g))
        adj = edges.to(g.dtype)
        h2 = torch.relu(torch.einsum("bij,bjh->bih", adj, self.gc_neigh(h1)) + self.gc_self(h1))

        h = torch.cat([g, h2], dim=-1)  # [B, N, 2h + h]
        if self.nodal_attention:
            beta = torch.einsum("bid,bjd->bij", self.cls_attn(h), h) / h.shape[-1] ** 0.5
            beta = beta.masked_fill(~mask[:, None, :], torch.finfo(beta.dtype).min)
            h = torch.einsum("bij,bjd->bid", torch.softmax(beta, dim=-1), h)
        return ModelOutput(squeeze_regression(self.classifier(h), self.spec))
