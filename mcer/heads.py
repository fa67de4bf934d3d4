"""Per-modality output heads, fused logits and the MCER loss.

Heads: ``activation -> dropout -> Linear(H -> C)`` per modality (C = 1 for regression);
fused prediction ``w_t l_t + w_a l_a + w_v l_v``. Loss: the task loss on the fused prediction
(class-weighted cross-entropy = NLL of log-softmax, or L1 for regression) plus, when enabled,
``aux_weight * (L_t^2 + L_a^2 + L_v^2)`` with ``L_m`` the same task loss on head ``m`` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from mcer._dropout import Dropout

HEAD_ACTIVATIONS = {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU, "gelu": nn.GELU}
HeadActivation = Literal[tuple(HEAD_ACTIVATIONS)]  # type: ignore[valid-type]
"""The ``head_activation`` option: a name of :data:`HEAD_ACTIVATIONS`."""
MODS = ("text", "audio", "video")


class ModalityHeads(nn.Module):
    """``{m: [B, N, H]}`` -> ``({m: [B, N, C]}, fused [B, N, C])``."""

    def __init__(self, hidden: int, out_dim: int, weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
                 activation: str = "leaky_relu", dropout: float = 0.1) -> None:
        super().__init__()
        if activation not in HEAD_ACTIVATIONS:
            raise ValueError(f"head_activation must be one of {sorted(HEAD_ACTIVATIONS)}, got {activation!r}")
        weights = tuple(float(w) for w in weights)
        if len(weights) != 3:
            raise ValueError(f"logit_weights must be 3 numbers (text, audio, video), got {weights!r}")
        self.weights = dict(zip(MODS, weights))
        self.heads = nn.ModuleDict(
            {m: nn.Sequential(HEAD_ACTIVATIONS[activation](), Dropout(dropout), nn.Linear(hidden, out_dim)) for m in MODS}
        )

    def forward(self, feats: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        logits = {m: self.heads[m](feats[m]) for m in MODS}
        fused = sum(self.weights[m] * logits[m] for m in MODS)
        return logits, fused


def mcer_loss(task_loss: Callable[[torch.Tensor], torch.Tensor], fused: torch.Tensor,
              per_modality: dict[str, torch.Tensor] | None, aux_weight: float = 0.1) -> torch.Tensor:
    """``task_loss(fused) + aux_weight * sum_m task_loss(per_modality[m])^2`` (scalar).

    ``task_loss`` maps a prediction to the (masked, optionally class-weighted) task loss;
    ``per_modality=None`` disables the auxiliary terms.
    """
    total = task_loss(fused)
    if per_modality:
        total = total + aux_weight * sum(task_loss(p) ** 2 for p in per_modality.values())
    return total
