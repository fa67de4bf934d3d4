"""DialogueGCN (Ghosal et al. 2019, "DialogueGCN: A Graph Convolutional Neural Network for
Emotion Recognition in Conversation", EMNLP), as released in declare-lab/conv-emotion
(``DialogueGCN/model.py``, ``DialogueGCNModel`` with base model ``LSTM``).

Architecture (the released code, where it differs from the paper the code wins):

1. Sequential context encoder: a ``lstm_layers``-layer bidirectional LSTM (width ``hidden`` per
   direction, dropout ``dropout`` between layers) over the chosen modalities' utterance
   vectors gives ``g_i`` (``2 hidden`` wide).
2. Graph: an edge ``i -> j`` for every ``j`` with ``-window_past <= j - i <= window_future``
   (self loop included; ``-1``: no limit on that side). Its relation is
   ``2 (S spk_i + spk_j) + (0 if i < j else 1)``: ``2 S^2`` relations.
3. Edge weights ``w(i -> j) = softmax_{k in window(i)}(a_i . g_k)`` at ``k = j``.
   ``edge_attention="position"`` (the code): ``a_i`` is row ``i`` of a learned
   ``[max_len, 2 hidden]`` matrix, one query vector per position in the dialogue, so
   dialogues longer than ``max_len`` are refused. ``edge_attention="bilinear"`` (the paper's
   equation 1): ``a_i = W_e g_i``.
4. Relational graph convolution (PyTorch Geometric 1.x ``RGCNConv`` with ``num_bases`` bases):
   ``h1_j = sum_{i -> j} w(i -> j) W_{rel(i,j)} g_i + W_root g_j + b``, ``W_r = sum_b c_rb V_b``;
   a plain sum (no ``1 / |N_j^r|``), the root term not weighted by ``w(j -> j)``, no activation.
5. Graph convolution (``GraphConv``): ``h2_j = sum_{i -> j} W h1_i + W' h1_j + b'``, no activation.
6. ``[g_j ; h2_j]``, optionally (``nodal_attention``) replaced by a matching attention over the
   dialogue (``softmax_s(tanh((W h_t + b) . h_s))``, the paper's equations 4-6), then
   ``ReLU(Linear(-> graph_hidden))``, dropout, and the output layer.

Differences from the released code, on purpose: the LSTM runs on packed sequences and padding
utterances are not graph nodes, so a dialogue's predictions do not depend on the batch (the
release's LSTM reads the padding of longer dialogues); the release's edge softmax keeps a
``1e-10`` share for non-neighbours, dropped here. Parameters the release creates but never uses
with its default ``attn1`` edge attention (three other attention modules) are not created.

Defaults (no preset): ``hidden=32``, ``graph_hidden=hidden``, ``window=10``, ``max_len=110``,
``num_bases=30``, ``dropout=0.3``: small for the CPU, not the paper's configuration.
``preset="iemocap"`` gives the release's argparse defaults (text 100; 100 / 100, window 10).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from torch import nn

from harness.data.collate import DialogueBatch
from harness.data.types import DataSpec
from harness.layers import MatchingAttention, dialogue_lengths, input_modalities, masked_softmax, run_packed
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.options import DropoutRate, PositiveInt, Range
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import IntRange, LogUniform, Uniform

EdgeAttention = Literal["position", "bilinear"]
Window = Annotated[int, Range(-1)]
"""Utterances of context on one side of an edge: -1 for no limit."""


class RelationalGraphConv(nn.Module):
    """``h_j = sum_i sum_r A[i, j, r] W_r x_i + W_root x_j + b`` with ``W_r = sum_b comp[r, b] basis[b]``.

    ``x``: ``[B, N, in]``; ``adj``: ``[B, N (source), N (target), R]`` edge weights per relation.
    Returns ``[B, N, out]``. Initialised as PyTorch Geometric 1.x's ``RGCNConv``.
    """

    def __init__(self, in_dim: int, out_dim: int, num_relations: int, num_bases: int) -> None:
        super().__init__()
        self.basis = nn.Parameter(torch.empty(num_bases, in_dim, out_dim))
        self.comp = nn.Parameter(torch.empty(num_relations, num_bases))
        self.root = nn.Parameter(torch.empty(in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(out_dim))
        bound = 1.0 / math.sqrt(num_bases * in_dim)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        weights = torch.einsum("rb,bio->rio", self.comp, self.basis)  # [R, in, out]
        messages = torch.einsum("bni,rio->bnro", x, weights)  # W_r x_i for every relation
        return torch.einsum("bijr,biro->bjo", adj, messages) + x @ self.root + self.bias


class GraphConv(nn.Module):
    """``h_j = sum_{i -> j} W x_i + W' x_j + b'`` (PyTorch Geometric 1.x ``GraphConv``, sum).

    ``x``: ``[B, N, in]``; ``edges``: ``[B, N (source), N (target)]`` 0/1. Returns ``[B, N, out]``."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        nn.init.uniform_(self.weight, -1.0 / math.sqrt(in_dim), 1.0 / math.sqrt(in_dim))
        self.lin = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bij,bio->bjo", edges, x @ self.weight) + self.lin(x)


_RELEASED = dict(repo="declare-lab/conv-emotion", path="DialogueGCN/model.py", commit="6128ca2")

PRESETS: dict[str, Preset] = {
    "iemocap": Preset(
        options=dict(hidden=100, graph_hidden=100, window=10, max_len=110, num_bases=30, lstm_layers=2,
                     edge_attention="position", nodal_attention=False, dropout=0.5, modalities=("text",)),
        dims={"text": 100, "audio": 1582, "video": 342}, task="classification", num_classes=6, num_speakers=2,
        recipe=dict(optimizer="adam", lr=1e-4, weight_decay=1e-5, epochs=60, patience=60, dialogue_batch_size=32,
                    grad_clip=None, lr_schedule="constant", class_weights="none"),
        blocks={"att_model.scalar": ("edge_att",), "graph_net.conv1": ("conv1",), "graph_net.conv2": ("conv2",),
                "graph_net.linear": ("linear",), "graph_net.smax_fc": ("smax_fc",)},
        reference=Reference(
            **_RELEASED,
            config="train_IEMOCAP.py argparse defaults (--base-model LSTM --graph-model, nodal attention off, "
                   "windows 10/10, dropout 0.5, n_speakers 2, max_seq_len 110; IEMOCAP_features.pkl, text only)",
            params=1_096_346, created_params=1_348_046,
            blocks={"lstm": 403_200, "att_model.scalar": 22_000, "graph_net.conv1": 620_340,
                    "graph_net.conv2": 20_100, "graph_net.linear": 30_100, "graph_net.smax_fc": 606},
            notes="Created but unused with attn1: att_model.matchatt (40,200), att_model.simpleatt (200), "
                  "att_model.att (121,000), graph_net.matchatt (90,300; used with --nodal-attention). "
                  "The README's reproduction command (--nodal-attention --dropout 0.4 --lr 0.0003 "
                  "--class-weight --l2 0.0) is options nodal_attention=True, dropout=0.4 (1,186,646 used) "
                  "with that recipe. The audio/visual widths of DialogueGCN's own pickle are not documented "
                  "(the model reads text only); the preset assumes MMGCN's copy of the file (1582 / 342). "
                  "The LSTM reads padding in the release; packed here. The release picks its best epoch on "
                  "the test set; mcer-bench on validation."),
    ),
}


@MODELS.register("dialoguegcn", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "window": IntRange(2, 10)},
                 level="dialogue", modalities=["text", "audio", "video"],
                 paper="Ghosal et al. 2019, DialogueGCN: A Graph Convolutional Neural Network for Emotion "
                       "Recognition in Conversation", presets=PRESETS)
class DialogueGCN(BenchModel):
    """BiLSTM context encoder, speaker/temporal relational graph over a window, two graph convolutions."""

    level = "dialogue"
    pooling = "mean"

    def __init__(self, spec: DataSpec, hidden: PositiveInt = 32, graph_hidden: PositiveInt | None = None,
                 window: Window = 10, window_past: Window | None = None, window_future: Window | None = None,
                 max_len: PositiveInt = 110, num_bases: PositiveInt = 30, lstm_layers: PositiveInt = 2,
                 edge_attention: EdgeAttention = "position", nodal_attention: bool = False,
                 dropout: DropoutRate = 0.3, modalities: tuple[str, ...] | list[str] | None = None) -> None:
        super().__init__(spec)
        graph_hidden = hidden if graph_hidden is None else graph_hidden
        self.window_past = window if window_past is None else window_past
        self.window_future = window if window_future is None else window_future
        self.modalities = input_modalities(spec.dims, modalities, "dialoguegcn")
        self.edge_attention, self.max_len = edge_attention, max_len
        self.num_relations = 2 * spec.num_speakers**2
        g = 2 * hidden
        self.lstm = nn.LSTM(sum(spec.dims[m] for m in self.modalities), hidden, num_layers=lstm_layers,
                            bidirectional=True, batch_first=True, dropout=dropout if lstm_layers > 1 else 0.0)
        self.edge_att = nn.Linear(g, max_len if edge_attention == "position" else g, bias=False)
        self.conv1 = RelationalGraphConv(g, graph_hidden, self.num_relations, num_bases)
        self.conv2 = GraphConv(graph_hidden, graph_hidden)
        feat = g + graph_hidden
        self.matchatt = MatchingAttention(feat, tanh=True) if nodal_attention else None
        self.linear = nn.Linear(feat, graph_hidden)
        self.dropout = nn.Dropout(dropout)
        self.smax_fc = nn.Linear(graph_hidden, spec.output_dim)

    def edges(self, mask: torch.Tensor) -> torch.Tensor:
        """Bool ``[B, N (source i), N (target j)]``: ``i -> j`` within the window, both real."""
        n = mask.shape[1]
        idx = torch.arange(n, device=mask.device)
        offset = idx[None, :] - idx[:, None]  # j - i
        inside = torch.ones(n, n, dtype=torch.bool, device=mask.device)
        if self.window_past >= 0:
            inside &= offset >= -self.window_past
        if self.window_future >= 0:
            inside &= offset <= self.window_future
        return inside[None] & mask[:, :, None] & mask[:, None, :]

    def edge_weights(self, g: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """``w(i -> j)``: ``[B, N, N]``, each source's row a softmax over its window (0 elsewhere)."""
        if self.edge_attention == "position":
            scores = self.edge_att(g)[..., : g.shape[1]].transpose(1, 2)  # [B, i, j] = a_i . g_j
        else:
            scores = torch.einsum("bid,bjd->bij", self.edge_att(g), g)
        return masked_softmax(scores, edges)

    def forward(self, batch: DialogueBatch) -> ModelOutput:
        mask, spk = batch.mask, batch.speakers
        s = self.spec.num_speakers
        if int(spk.max()) >= s:
            raise ValueError(f"dialoguegcn: speaker id {int(spk.max())} >= spec.num_speakers={s}")
        lengths = dialogue_lengths(mask)
        if self.edge_attention == "position" and int(lengths.max()) > self.max_len:
            raise ValueError(f"dialoguegcn: a dialogue has {int(lengths.max())} utterances but max_len={self.max_len} "
                             f"(the position edge attention has one query per position); raise max_len")
        x = torch.cat([batch.inputs[m] for m in self.modalities], dim=-1)
        g = run_packed(self.lstm, x, lengths)  # [B, N, 2 hidden]

        edges = self.edges(mask)
        n = mask.shape[1]
        idx = torch.arange(n, device=g.device)
        later = (idx[:, None] < idx[None, :]).long()  # i < j
        rel = 2 * (spk[:, :, None] * s + spk[:, None, :]) + (1 - later)[None]  # [B, i, j]
        onehot = nn.functional.one_hot(rel, self.num_relations).to(g.dtype)
        adj = self.edge_weights(g, edges)[..., None] * onehot  # [B, i, j, R]
        h1 = self.conv1(g, adj)
        h2 = self.conv2(h1, edges.to(g.dtype))

        h = torch.cat([g, h2], dim=-1)
        if self.matchatt is not None:
            h = self.matchatt(h, mask)
        hidden = self.dropout(torch.relu(self.linear(h)))
        return ModelOutput(squeeze_regression(self.smax_fc(hidden), self.spec))
