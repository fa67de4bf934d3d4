"""Attention helpers shared by the MCER blocks (private: not a plugin module)."""

from __future__ import annotations

import math

import torch


def masked_softmax(scores: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis where ``key_mask`` is True; rows with no valid key give zeros.

    ``scores``: ``[..., Nq, Nk]``; ``key_mask``: bool broadcastable to ``scores`` (True = keep).
    Masked entries are exactly zero, so padding never contributes to a real row.
    """
    if key_mask is None:
        return torch.softmax(scores, dim=-1)
    filled = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
    probs = torch.softmax(filled, dim=-1)
    # In a row with a valid key, exp(finfo.min - max) underflows to exactly 0, so only rows
    # without any valid key need zeroing. On the CPU, skip that pass when there is none; on an
    # accelerator, always apply it (asking would cost a device sync).
    empty = ~key_mask.any(dim=-1, keepdim=True)
    if probs.device.type == "cpu" and not bool(empty.any()):
        return probs
    return probs.masked_fill(empty, 0.0)


def gelu_tanh(x: torch.Tensor, coefficient: float = 0.5) -> torch.Tensor:
    """``c * x * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``; ``c = 0.5`` is the usual GELU."""
    return coefficient * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x.pow(3))))


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, N, H]`` -> ``[B, heads, N, H/heads]``."""
    b, n, h = x.shape
    return x.view(b, n, heads, h // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, heads, N, d]`` -> ``[B, N, heads*d]``."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)
