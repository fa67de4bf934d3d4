"""Filter gates applied to the denoised audio and visual streams."""

from __future__ import annotations

import torch
from torch import nn


class FilterGate(nn.Module):
    """Element-wise self gate ``m <- sigmoid(W m) * m``; ``[B, N, H]`` -> ``[B, N, H]``."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate(x)) * x
