"""Filter gates applied to the denoised audio and visual streams."""

from __future__ import annotations

import torch
from torch import nn


def blend(start: torch.Tensor, end: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``start + weight (end - start)`` = ``weight end + (1 - weight) start`` in one ``lerp``
    pass, in the promoted dtype of the three (``lerp`` itself refuses mixed dtypes, which
    autocast produces: a bf16 gate against a float32 residual stream)."""
    dtype = torch.promote_types(torch.promote_types(start.dtype, end.dtype), weight.dtype)
    return torch.lerp(start.to(dtype), end.to(dtype), weight.to(dtype))


class FilterGate(nn.Module):
    """Element-wise self gate ``m <- sigmoid(W m) * m``; ``[B, N, H]`` -> ``[B, N, H]``."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate(x)) * x
