"""Cross-modal diffusion (the reference's ``MutualFormer``) and its ablation alternatives.

``fusion`` modes, all ``(t, a, v [B, N, H], mask [B, N]) -> (t', a', v')``:

- ``"symmetric"`` (the reference code): every modality ``m`` cross-attends to each of the other
  two, the two results are summed, gated against ``m`` (``g m + (1-g) cross``), passed through a
  4-layer MLP (ratio 4) and added to ``m``.
- ``"text-guided"``: text receives audio and video as above (audiovisual information diffused into
  the text stream); audio and video receive text only (no audio<->video exchange).
- ``"concat"``: no attention; ``t' = t + MLP(Linear([t; a; v]))``, audio and video unchanged.

``key_mask=False`` reproduces the reference (no key mask, so padding leaks into real rows).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from harness.layers import merge_heads, split_heads
from mcer._dropout import Dropout
from mcer.attention import attend
from mcer.gates import blend
from mcer.recompute import recomputed

FusionMode = Literal["text-guided", "symmetric", "concat"]
FUSION_MODES: tuple[str, ...] = get_args(FusionMode)


class CrossAttention(nn.Module):
    """Queries from ``x``, keys/values from ``other`` through one shared bias-free ``qkv``
    projection (as coded), then ``proj``: ``[B, N, H] x [B, N, H]`` -> ``[B, N, H]``."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"fusion hidden size {dim} must be divisible by fusion heads {heads}")
        self.heads, self.dim = heads, dim
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_drop = Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, other: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        w = self.qkv.weight
        q = split_heads(x @ w[: self.dim].t(), self.heads)
        k = split_heads(other @ w[self.dim : 2 * self.dim].t(), self.heads)
        v = split_heads(other @ w[2 * self.dim :].t(), self.heads)
        keys = None if mask is None else mask[:, None, None, :]
        z = attend(q, k, v, keys, self.scale, self.attn_drop.p, self.training)
        return self.proj_drop(self.proj(merge_heads(z)))


class GatedFusion(nn.Module):
    """``g = sigmoid(W [x; y])``; returns ``g x + (1 - g) y`` (``[B, N, H]``).

    ``W [x; y]`` is computed as ``W_x x + W_y y`` (the two halves of the same weight), so the
    ``[B, N, 2H]`` concatenation is never built; the blend is one ``lerp``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.gate = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        w = self.gate.weight
        g = torch.sigmoid(F.linear(x, w[:, : self.dim]) + F.linear(y, w[:, self.dim :], self.gate.bias))
        return blend(y, x, g)


def fusion_mlp(dim: int, hidden: int, dropout: float, layers: int = 4) -> nn.Sequential:
    """``layers`` Linear layers ``dim -> hidden -> ... -> dim`` with GELU and dropout between."""
    mods: list[nn.Module] = [nn.Linear(dim, hidden), nn.GELU(), Dropout(dropout)]
    for _ in range(layers - 2):
        mods += [nn.Linear(hidden, hidden), nn.GELU(), Dropout(dropout)]
    mods += [nn.Linear(hidden, dim), Dropout(dropout)]
    return nn.Sequential(*mods)


class CrossModalDiffusion(nn.Module):
    """The fusion block (see the module doc). Modalities are keyed ``"text"``, ``"audio"``, ``"video"``."""

    def __init__(self, dim: int, heads: int, mode: str = "text-guided", mlp_ratio: float = 4.0,
                 dropout: float = 0.0, key_mask: bool = True) -> None:
        super().__init__()
        if mode not in FUSION_MODES:
            raise ValueError(f"fusion must be one of {FUSION_MODES}, got {mode!r}")
        self.mode, self.key_mask = mode, key_mask
        self.recompute = False  # set by the model: recompute each modality's update in the backward pass
        hidden = int(dim * mlp_ratio)
        if mode == "concat":
            self.joint = nn.Linear(3 * dim, dim)
            self.mlp = fusion_mlp(dim, hidden, dropout)
            return
        mods = ("t", "a", "v")
        self.norm = nn.ModuleDict({m: nn.LayerNorm(dim) for m in mods})
        self.attn = nn.ModuleDict({m: CrossAttention(dim, heads, dropout) for m in mods})
        self.gate = nn.ModuleDict({m: GatedFusion(dim) for m in mods})
        self.mlp = nn.ModuleDict({m: fusion_mlp(dim, hidden, dropout) for m in mods})
        if mode == "symmetric":
            self.sources = {"t": ("a", "v"), "a": ("t", "v"), "v": ("t", "a")}
        else:
            self.sources = {"t": ("a", "v"), "a": ("t",), "v": ("t",)}

    def forward(self, t: torch.Tensor, a: torch.Tensor, v: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.mode == "concat":
            return t + self.mlp(self.joint(torch.cat([t, a, v], dim=-1))), a, v
        km = mask if self.key_mask else None
        raw = {"t": t, "a": a, "v": v}
        normed = {m: self.norm[m](x) for m, x in raw.items()}
        out = {m: recomputed(self._diffuse, self.recompute, m, x, km, normed[m], *(normed[s] for s in self.sources[m]))
               for m, x in raw.items()}
        return out["t"], out["a"], out["v"]

    def _diffuse(self, m: str, x: torch.Tensor, km: torch.Tensor | None, own: torch.Tensor,
                 *sources: torch.Tensor) -> torch.Tensor:
        """Modality ``m``'s update: cross-attention to each source, summed, gated, MLP, residual."""
        cross = sum(self.attn[m](own, s, km) for s in sources)
        return x + self.mlp[m](self.gate[m](x, cross))
