"""The denoising encoder for the audio and visual streams.

``x [B, N, H]`` (projected features) and ``x_pe`` (the same with positional + speaker
encoding) go through: a learned temporal delta, a scalar context gate, one post-LN
attention layer (differential or standard), and come out as ``x_pe + c * z``.

Attention variants (``variant``):

- ``"diff-shift"`` (reference): map 1 = ``softmax(q k^T s)``, map 2 = the same queries against
  the keys shifted one utterance back; output ``lambda (A1 - A2) v``. Both maps come from ONE
  ``q k^T`` product (map 2's scores are map 1's columns shifted by one). ``cyclic=True``
  reproduces the reference's ``torch.roll`` (utterance 0 is compared with the last, padded,
  position); ``cyclic=False`` drops that column and every column whose key or value is padding.
- ``"diff-dual"`` (Ye et al. 2024): two query/key groups of half the head width,
  ``(A1 - lambda A2) v``, ``lambda = exp(lq1.lk1) - exp(lq2.lk2) + lambda_init``,
  ``lambda_init = 0.8 - 0.6 exp(-0.3 l)`` (l = 1-based layer index), per-head RMS norm scaled by
  ``1 - lambda_init``.
- ``"standard"``: ``softmax(q k^T s) v``.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import nn

from harness.layers import gelu_tanh, masked_softmax, merge_heads, split_heads
from mcer._dropout import Dropout
from mcer.attention import attend
from mcer.gates import blend

AttentionVariant = Literal["diff-shift", "diff-dual", "standard"]
ATTENTION_VARIANTS: tuple[str, ...] = get_args(AttentionVariant)
AttentionScale = Literal["model", "head"]


class LearnableDelta(nn.Module):
    """``delta = x + alpha * sigmoid(W x) * LN(depthwise_conv1d_k(x))``; ``[B, N, H]`` -> ``[B, N, H]``.

    With ``masked=True`` padding rows are zeroed before the convolution, so the last real
    utterance sees zeros beyond the dialogue's end whatever the batch's padded length.
    """

    def __init__(self, hidden: int, kernel: int = 3, masked: bool = True) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"delta kernel must be a positive odd int, got {kernel}")
        self.masked = masked
        self.conv = nn.Conv1d(hidden, hidden, kernel_size=kernel, padding=kernel // 2, groups=hidden)
        self.norm = nn.LayerNorm(hidden)
        self.gate = nn.Linear(hidden, hidden)
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        src = x * mask.unsqueeze(-1).to(x.dtype) if self.masked else x
        delta = self.norm(self.conv(src.transpose(1, 2)).transpose(1, 2))
        return x + self.alpha * torch.sigmoid(self.gate(x)) * delta


class ContextGate(nn.Module):
    """Scalar gate ``g = sigmoid(w2^T tanh(W1 LN([x_pe; delta])))``; returns ``g delta + (1-g) x_pe``."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(2 * hidden)
        self.w1 = nn.Linear(2 * hidden, hidden)
        self.w2 = nn.Linear(hidden, 1)

    def forward(self, x_pe: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.w2(torch.tanh(self.w1(self.norm(torch.cat([x_pe, delta], dim=-1))))))
        return blend(x_pe, delta, g)


def shifted_key_mask(mask: torch.Tensor, cyclic: bool) -> torch.Tensor:
    """Key mask of map 2 (keys shifted one back), ``[B, N]`` bool.

    Column ``j`` of map 2 scores key ``j-1`` and weights value ``j``. Non-cyclic: valid only
    when both ``j-1`` and ``j`` are real utterances. Cyclic (reference): the plain mask.
    """
    if cyclic:
        return mask
    prev = torch.zeros_like(mask)
    prev[:, 1:] = mask[:, :-1]
    return mask & prev


class DenoiseAttention(nn.Module):
    """Self-attention over utterances: ``[B, N, H]`` -> ``[B, N, H]`` (see the module doc for variants).

    ``scale="model"`` divides scores by ``sqrt(H)`` (reference); ``"head"`` by ``sqrt(H/heads)``.
    """

    def __init__(self, hidden: int, heads: int, variant: str = "diff-shift", dropout: float = 0.1,
                 scale: str = "head", cyclic: bool = False, layer_index: int = 1) -> None:
        super().__init__()
        if variant not in ATTENTION_VARIANTS:
            raise ValueError(f"denoiser attention variant must be one of {ATTENTION_VARIANTS}, got {variant!r}")
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} must be divisible by heads {heads}")
        if scale not in get_args(AttentionScale):
            raise ValueError(f"attention scale must be 'model' or 'head', got {scale!r}")
        self.variant, self.heads, self.cyclic = variant, heads, cyclic
        dh = hidden // heads
        if variant == "diff-dual" and dh % 2:
            raise ValueError(f"diff-dual needs an even head width, got hidden/heads = {dh}")
        qk_dim = dh // 2 if variant == "diff-dual" else dh
        self.scale = (hidden if scale == "model" else qk_dim) ** -0.5
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.dropout = Dropout(dropout)
        if variant == "diff-shift":
            self.lambda_ = nn.Parameter(torch.tensor(0.5))
        elif variant == "diff-dual":
            self.lambda_init = 0.8 - 0.6 * math.exp(-0.3 * layer_index)
            self.lambda_q1, self.lambda_k1, self.lambda_q2, self.lambda_k2 = (
                nn.Parameter(torch.randn(qk_dim) * 0.1) for _ in range(4)
            )
            self.rms = nn.RMSNorm(dh, eps=1e-5, elementwise_affine=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))  # [B, h, N, dh]
        keys = None if mask is None else mask[:, None, None, :]
        if self.variant == "diff-dual":
            q1, q2 = q.chunk(2, dim=-1)
            k1, k2 = k.chunk(2, dim=-1)
            a1 = masked_softmax(q1 @ k1.transpose(-2, -1) * self.scale, keys)
            a2 = masked_softmax(q2 @ k2.transpose(-2, -1) * self.scale, keys)
            lam = (torch.exp((self.lambda_q1 * self.lambda_k1).sum()) - torch.exp((self.lambda_q2 * self.lambda_k2).sum())
                   + self.lambda_init)
            z = self.dropout(a1 - lam * a2) @ v
            z = self.rms(z) * (1 - self.lambda_init)
            return self.out(merge_heads(z))
        if self.variant == "standard":
            z = attend(q, k, v, keys, self.scale, self.dropout.p, self.training)
            return self.out(merge_heads(z))
        keys2 = None if mask is None else shifted_key_mask(mask, self.cyclic)[:, None, None, :]
        if keys2 is None and not self.cyclic:
            n = q.shape[-2]
            keys2 = (torch.arange(n, device=x.device) > 0).view(1, 1, 1, n)
        # both maps from the one q k^T product; lambda scales the [.., N, dh] output, not a map
        z = self.lambda_ * attend(q, k, v, keys, self.scale, self.dropout.p, self.training,
                                  shift="cyclic" if self.cyclic else "pad", keys2=keys2)
        return self.out(merge_heads(z))


class FeedForward(nn.Module):
    """Pre-LN residual feed-forward: ``x + W2 drop(gelu_c(W1 LN(x)))``; ``[B, N, H]`` -> same."""

    def __init__(self, hidden: int, ff: int, dropout: float, gelu_coef: float = 0.5) -> None:
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(hidden, ff), nn.Linear(ff, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-6)
        self.drop1, self.drop2 = Dropout(dropout), Dropout(dropout)
        self.gelu_coef = gelu_coef

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop2(self.w_2(self.drop1(gelu_tanh(self.w_1(self.norm(x)), self.gelu_coef))))


class DenoiseLayer(nn.Module):
    """Post-LN layer: ``x = LN(x + attn(x)); x = LN(x + ffn(x))`` (ffn is itself residual, as coded)."""

    def __init__(self, hidden: int, heads: int, variant: str, dropout: float, gelu_coef: float = 0.5,
                 scale: str = "head", cyclic: bool = False) -> None:
        super().__init__()
        self.attn = DenoiseAttention(hidden, heads, variant, dropout, scale, cyclic)
        self.ffn = FeedForward(hidden, hidden, dropout, gelu_coef)
        self.norm1 = nn.LayerNorm(hidden, eps=1e-6)
        self.norm2 = nn.LayerNorm(hidden, eps=1e-6)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.norm1(x + self.attn(x, mask))
        return self.norm2(x + self.ffn(x))


class DenoisingEncoder(nn.Module):
    """One stream's denoiser: ``(x, x_pe, mask)`` -> ``x_pe + residual_scale * z``, all ``[B, N, H]``.

    ``x`` is the projected input, ``x_pe`` the same after positional/speaker encoding (and
    dropout). ``reference_masking=True`` reproduces the reference's padding leaks (unmasked
    convolution, cyclic key shift).
    """

    def __init__(self, hidden: int, heads: int, variant: str = "diff-shift", dropout: float = 0.1,
                 kernel: int = 3, residual_scale: float = 0.5, gelu_coef: float = 0.5, scale: str = "head",
                 reference_masking: bool = False) -> None:
        super().__init__()
        self.delta = LearnableDelta(hidden, kernel, masked=not reference_masking)
        self.context_gate = ContextGate(hidden)
        self.pre_norm = nn.LayerNorm(hidden, eps=1e-6)
        self.layer = DenoiseLayer(hidden, heads, variant, dropout, gelu_coef, scale, cyclic=reference_masking)
        self.residual_scale = residual_scale

    def forward(self, x: torch.Tensor, x_pe: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        u = self.pre_norm(self.context_gate(x_pe, self.delta(x, mask)) + x_pe)
        return x_pe + self.residual_scale * self.layer(u, mask)

