"""Private building blocks shared by several baselines (not auto-imported: leading underscore).

Everything here respects padding: a sample's output never depends on the rows it is padded
with, so predictions do not depend on what a sample is batched with.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from harness.layers import SequenceEncoder
from harness.models import masked_mean


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
