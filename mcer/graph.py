"""Relation-aware graph attention (RGAT) over the intra- and inter-speaker subgraphs.

Relation ids of the edge ``i <- j`` (target ``i``, source ``j``), both real and ``|i-j| <= w``:
0 none, 1 self, 2 same speaker earlier (``j < i``), 3 same speaker later, 4 other speaker later
(``j > i``), 5 other speaker earlier. The intra-speaker graph keeps relations {1, 2, 3}, the
inter-speaker graph {1, 4, 5}; the fully-connected "unaware" graph keeps all window edges.

A GAT score is ``LeakyReLU_0.2(a^T [W h_i ; W h_j ; E rel_ij])``. It is computed in the
decomposed exact form ``(W h . a1)_i + (W h . a2)_j + (E a3)[rel_ij]``: memory ``O(B N^2)``,
never the ``[B, N, N, 2F + 10]`` concatenation. The relation term is a lookup in a 6-entry table;
its gradient is summed per relation (:func:`relation_bias`: one ``one_hot(rel)^T grad`` product
on a GPU, a serial scatter-add on the CPU) rather than scattered into the 6 cells with atomics
(``B N^2`` colliding writes on a GPU, most of a CUDA step's time at the reference size).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from harness.layers import masked_softmax
from mcer._dropout import dropout
from mcer.recompute import recomputed

NUM_RELATIONS = 6
RELATION_DIM = 10
GRAPH_KINDS = ("intra", "inter", "all")


def build_relations(speakers: torch.Tensor, mask: torch.Tensor, window: int) -> torch.Tensor:
    """Relation ids ``[B, N, N]`` (int64, on the input's device), built in one vectorised pass.

    ``speakers``: ``[B, N]`` ids; ``mask``: ``[B, N]`` bool (True = real); ``window``: ``w >= 0``.
    """
    if window < 0:
        raise ValueError(f"graph window must be >= 0, got {window}")
    n = speakers.shape[1]
    pos = torch.arange(n, device=speakers.device)
    diff = pos[None, :] - pos[:, None]  # [N, N]: j - i
    same = speakers[:, :, None] == speakers[:, None, :]  # [B, N, N]
    earlier = (diff < 0)[None]
    rel = torch.where(same, torch.where(earlier, 2, 3), torch.where(earlier, 5, 4))
    rel = torch.where((diff == 0)[None], torch.ones_like(rel), rel)
    valid = (diff.abs() <= window)[None] & mask[:, :, None] & mask[:, None, :]
    return torch.where(valid, rel, torch.zeros_like(rel))


def select_graph(relations: torch.Tensor, kind: str) -> torch.Tensor:
    """Keep the edges of one subgraph (``"intra"``, ``"inter"`` or ``"all"``); others become 0."""
    if kind == "all":
        return relations
    if kind == "intra":
        keep = (relations == 1) | (relations == 2) | (relations == 3)
    elif kind == "inter":
        keep = (relations == 1) | (relations == 4) | (relations == 5)
    else:
        raise ValueError(f"graph kind must be one of {GRAPH_KINDS}, got {kind!r}")
    return torch.where(keep, relations, torch.zeros_like(relations))


def sum_per_relation(grad: torch.Tensor, relations: torch.Tensor, size: int, method: str | None = None) -> torch.Tensor:
    """``out[r] = sum of grad over the pairs whose relation is r`` (``[size]``, ``grad``'s dtype,
    accumulated in at least float32), without atomics.

    ``method``: ``"one-hot"`` (one ``one_hot(relations)^T grad`` product: the accelerator form),
    ``"scatter"`` (a serial scatter-add: the CPU form, ~1 ms for the 193,600 pairs of the
    reference step against ~8 ms for the indexing backward and ~26 ms for the product there),
    or ``None`` to choose by ``grad``'s device.
    """
    acc = torch.promote_types(grad.dtype, torch.float32)  # bf16/fp16 gradients summed in float32
    if method is None:
        method = "scatter" if grad.device.type == "cpu" else "one-hot"
    if method == "scatter":
        out = torch.zeros(size, dtype=acc, device=grad.device).scatter_add_(0, relations.reshape(-1),
                                                                           grad.reshape(-1).to(acc))
    elif method == "one-hot":
        one_hot = (relations.reshape(-1, 1) == torch.arange(size, device=relations.device)).to(acc)
        out = (grad.reshape(1, -1).to(acc) @ one_hot).reshape(size)
    else:
        raise ValueError(f"method must be 'scatter', 'one-hot' or None, got {method!r}")
    return out.to(grad.dtype)


class _RelationBias(torch.autograd.Function):
    """``table[relations]``; the table's gradient is :func:`sum_per_relation` of the upstream one."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(relations)
        ctx.size = table.shape[0]
        return table[relations]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        (relations,) = ctx.saved_tensors
        return sum_per_relation(grad, relations, ctx.size), None


def relation_bias(table: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
    """``table[relations]`` (``[R]`` indexed by int ``[B, N, N]`` -> ``[B, N, N]``) with a gradient
    free of atomics: ``d table[r] = sum of grad over the pairs whose relation is r``."""
    if not table.requires_grad or not torch.is_grad_enabled():
        return table[relations]
    return _RelationBias.apply(table, relations)


class GraphAttentionLayer(nn.Module):
    """One GAT head: ``h [B, N, F_in]``, ``rel [B, N, N]`` -> ``LN(softmax_j(e_ij) W h_j)`` ``[B, N, F_out]``.

    ``relation_embedding`` (shared ``Embedding(6, 10)``) makes it relation-aware; ``None`` gives
    the plain GAT score ``a^T [W h_i ; W h_j]``. ``concat=True`` applies GELU to the output.
    Rows with no edge (padding) get a zero attention row.
    """

    def __init__(self, in_features: int, out_features: int, dropout: float = 0.2, alpha: float = 0.2,
                 concat: bool = True, relation_embedding: nn.Embedding | None = None) -> None:
        super().__init__()
        self.dropout, self.concat, self.out_features = dropout, concat, out_features
        self.W = nn.Parameter(torch.empty(in_features, out_features))
        nn.init.xavier_uniform_(self.W, gain=1.414)
        self.relation_embedding = relation_embedding
        rel_dim = relation_embedding.embedding_dim if relation_embedding is not None else 0
        self.a = nn.Parameter(torch.empty(2 * out_features + rel_dim, 1))
        nn.init.xavier_uniform_(self.a, gain=1.414)
        self.leakyrelu = nn.LeakyReLU(alpha)
        self.layer_norm = nn.LayerNorm(out_features)

    def scores(self, wh: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        """Raw scores ``e [B, N, N]`` in the decomposed form (before masking)."""
        f = self.out_features
        a = self.a.squeeze(-1)
        e = (wh @ a[:f]).unsqueeze(2) + (wh @ a[f : 2 * f]).unsqueeze(1)
        if self.relation_embedding is not None:
            table = self.relation_embedding.weight @ a[2 * f :]  # [6]: (E a3)
            e = e + relation_bias(table, relations)
        return self.leakyrelu(e)

    def forward(self, h: torch.Tensor, relations: torch.Tensor, edges: torch.Tensor | None = None) -> torch.Tensor:
        """``edges`` (``relations > 0``, bool ``[B, N, N]``) may be passed when several layers share it."""
        wh = h @ self.W
        if edges is None:
            edges = relations > 0
        att = masked_softmax(self.scores(wh, relations), edges)
        att = dropout(att, self.dropout, training=self.training)
        out = self.layer_norm(att @ wh)
        return F.gelu(out) if self.concat else out


class RGAT(nn.Module):
    """Relation-aware GAT block: ``heads`` GAT heads (concatenated), an output GAT layer, GELU,
    Linear, residual, LayerNorm. ``x [B, N, H]``, ``relations [B, N, N]`` -> ``[B, N, H]``."""

    def __init__(self, hidden: int, heads: int = 2, dropout: float = 0.2, alpha: float = 0.2,
                 relation_embedding: nn.Embedding | None = None) -> None:
        super().__init__()
        self.dropout = dropout
        self.attentions = nn.ModuleList(
            GraphAttentionLayer(hidden, hidden, dropout, alpha, True, relation_embedding) for _ in range(heads)
        )
        self.out_att = GraphAttentionLayer(hidden * heads, hidden, dropout, alpha, False, relation_embedding)
        self.fc = nn.Linear(hidden, hidden)
        self.layer_norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        residual = x
        edges = relations > 0
        x = dropout(x, self.dropout, training=self.training)
        x = torch.cat([att(x, relations, edges) for att in self.attentions], dim=-1)
        x = dropout(x, self.dropout, training=self.training)
        x = self.fc(F.gelu(self.out_att(x, relations, edges)))
        return self.layer_norm(x + residual)


GraphOption = Literal["both", "intra", "inter", "unaware", "none"]
GRAPH_OPTIONS: tuple[str, ...] = get_args(GraphOption)


class SpeakerGraphs(nn.Module):
    """The text stream's graph stage, chosen by ``graphs``:

    ``"both"`` inter-speaker RGAT then intra-speaker RGAT (reference); ``"intra"`` / ``"inter"``
    one of them; ``"unaware"`` two plain GAT blocks over all window edges (no relation
    embedding); ``"none"`` identity. ``forward(x [B, N, H], speakers [B, N], mask [B, N])``.
    """

    def __init__(self, hidden: int, graphs: str = "both", window: int = 20, heads: int = 2,
                 dropout: float = 0.2) -> None:
        super().__init__()
        if graphs not in GRAPH_OPTIONS:
            raise ValueError(f"graphs must be one of {GRAPH_OPTIONS}, got {graphs!r}")
        self.graphs, self.window = graphs, window
        self.kinds = {"both": ["inter", "intra"], "intra": ["intra"], "inter": ["inter"], "unaware": ["all", "all"],
                      "none": []}[graphs]
        emb = nn.Embedding(NUM_RELATIONS, RELATION_DIM) if graphs not in ("unaware", "none") else None
        self.relation_embedding = emb
        self.blocks = nn.ModuleList(RGAT(hidden, heads, dropout, relation_embedding=emb) for _ in self.kinds)
        self.recompute = False  # set by the model: recompute each block's activations in the backward pass

    def forward(self, x: torch.Tensor, speakers: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not self.kinds:
            return x
        relations = build_relations(speakers, mask, self.window)
        for kind, block in zip(self.kinds, self.blocks):
            x = recomputed(block, self.recompute, x, select_graph(relations, kind))
        return x
