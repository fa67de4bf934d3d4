"""The released code's GAT score, kept ONLY for the benchmark's comparison.

It materialises ``[W h_i ; W h_j ; E rel_ij]`` for every pair: a ``[B, N, N, 2F + 10]`` tensor
(via ``repeat_interleave`` / ``repeat`` / ``cat``, as coded), then multiplies it by ``a``.
"""

from __future__ import annotations

import torch


def naive_scores(self, wh: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
    """Drop-in replacement for ``mcer.graph.GraphAttentionLayer.scores`` (same result, O(B N^2 F))."""
    b, n, f = wh.shape
    chunks = wh.repeat_interleave(n, dim=1)
    alternating = wh.repeat(1, n, 1)
    a_input = torch.cat([chunks, alternating], dim=2).view(b, n, n, 2 * f)
    if self.relation_embedding is not None:
        a_input = torch.cat([a_input, self.relation_embedding(relations)], dim=-1)
    return self.leakyrelu(torch.matmul(a_input, self.a).squeeze(3))


def install() -> None:
    """Swap the decomposed score for the naive one in every GraphAttentionLayer."""
    from mcer.graph import GraphAttentionLayer

    GraphAttentionLayer.scores = naive_scores
