"""Layers shared by several models (MCER and the baselines): their one home.

Everything here respects padding: a sample's output never depends on the rows it is padded
with, so predictions do not depend on what a sample is batched with. Blocks that only one
model uses live in that model's own file.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from harness.models import masked_mean


class SequenceEncoder(nn.Module):
    """Bidirectional GRU over the real frames of ``[B, T, D]``; returns ``[B, 2*hidden]``.

    Padding never enters the recurrence (packed sequences), so a sample's encoding does not
    depend on what it is batched with.
    """

    def __init__(self, in_dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.rnn = nn.GRU(in_dim, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = 2 * hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.norm(x), lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)  # [2, B, hidden]
        return self.dropout(torch.cat([h[0], h[1]], dim=-1))


def mlp(in_dim: int, hidden: int, out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """Two-layer perceptron with GELU and dropout."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))


def sinusoidal_positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Fixed sinusoidal position encodings (Vaswani et al. 2017): ``[length, dim]``."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    half = (dim + 1) // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=device, dtype=torch.float32) / max(half, 1))
    ang = pos * freq[None, :]
    pe = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)[:, :dim]
    return pe.to(dtype)


class CrossAttentionLayer(nn.Module):
    """One pre-LayerNorm transformer layer whose queries come from ``x`` and keys/values from
    ``source`` (self-attention when ``source is x``): ``[B, Tq, d]``, ``[B, Tk, d]`` -> ``[B, Tq, d]``.

    ``key_padding`` is bool ``[B, Tk]`` with True at *padding* keys (torch convention); every
    row must have at least one real key.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, ff_mult: int = 4) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden size {dim} must be divisible by the number of heads {heads}")
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_mult * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, source: torch.Tensor, key_padding: torch.Tensor) -> torch.Tensor:
        q = self.norm_q(x)
        kv = self.norm_kv(source)
        a, _ = self.attn(q, kv, kv, key_padding_mask=key_padding, need_weights=False)
        x = x + self.dropout(a)
        return x + self.dropout(self.ff(self.norm_ff(x)))


class UtteranceSubnet(nn.Module):
    """Utterance embedding subnetwork of TFN / LMF (Zadeh et al. 2017, section 3.1):
    ``"rnn"``: a packed BiGRU over the frames (the paper's language LSTM), then a linear layer;
    ``"mean"``: the mean of the real frames, then a 3-layer ReLU network (the paper's audio and
    visual subnetworks, which average the frames). ``[B, T, D]`` + lengths ``[B]`` -> ``[B, out]``."""

    def __init__(self, in_dim: int, out_dim: int, kind: str, dropout: float = 0.0) -> None:
        super().__init__()
        if kind not in ("rnn", "mean"):
            raise ValueError(f"subnetwork kind must be 'rnn' or 'mean', got {kind!r}")
        self.kind = kind
        if kind == "rnn":
            self.encoder = SequenceEncoder(in_dim, out_dim, dropout)
            self.proj: nn.Module = nn.Sequential(nn.Linear(self.encoder.out_dim, out_dim), nn.ReLU())
        else:
            self.norm = nn.LayerNorm(in_dim)
            self.proj = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(in_dim, out_dim), nn.ReLU(),
                nn.Linear(out_dim, out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim), nn.ReLU(),
            )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.kind == "rnn":
            return self.proj(self.encoder(x, lengths))
        return self.proj(masked_mean(self.norm(x), lengths))


def subnet_kind(modality: str) -> str:
    """The TFN convention: a recurrent subnetwork for text, frame averaging for the others."""
    return "rnn" if modality == "text" else "mean"


def dialogue_lengths(mask: torch.Tensor) -> torch.Tensor:
    """Number of real utterances per dialogue from a ``[B, N]`` prefix mask: long ``[B]``."""
    return mask.long().sum(1).clamp(min=1)


def masked_softmax(scores: torch.Tensor, key_mask: torch.Tensor | None, filled: bool = False) -> torch.Tensor:
    """Softmax over the last axis where ``key_mask`` is True; rows with no valid key give zeros.

    ``scores``: ``[..., Nq, Nk]``; ``key_mask``: bool broadcastable to ``scores`` (True = keep).
    Masked entries are exactly zero, so padding never contributes to a real row. The result
    keeps the dtype of ``scores`` even under autocast (which would otherwise write a float32
    map): a bf16 map stays bf16 (the softmax still accumulates in float32 internally).
    ``filled=True`` says the masked entries of ``scores`` already hold ``finfo.min``.
    """
    if key_mask is None:
        return torch.softmax(scores, dim=-1, dtype=scores.dtype)
    if not filled:
        scores = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1, dtype=scores.dtype)
    # In a row with a valid key, exp(finfo.min - max) underflows to exactly 0, so only rows
    # without any valid key need zeroing. On the CPU, skip that pass when there is none; on an
    # accelerator, always apply it (asking would cost a device sync).
    empty = ~key_mask.any(dim=-1, keepdim=True)
    if probs.device.type == "cpu" and not bool(empty.any()):
        return probs
    return probs.masked_fill(empty, 0.0)


def gelu_tanh(x: torch.Tensor, coefficient: float = 0.5) -> torch.Tensor:
    """``c * x * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``; ``c = 0.5`` is the usual GELU.

    Computed as ``2c * gelu_tanh_approximation(x)``: one fused kernel forward and backward
    (instead of eight elementwise passes, and no float32 upcast of ``x.pow(3)`` under autocast).
    """
    y = F.gelu(x, approximate="tanh")
    return y if coefficient == 0.5 else y * (2.0 * coefficient)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, N, H]`` -> ``[B, heads, N, H/heads]``."""
    b, n, h = x.shape
    return x.view(b, n, heads, h // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, heads, N, d]`` -> ``[B, N, heads*d]``."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)
