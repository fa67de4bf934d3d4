"""Activation recomputation for the MCER stages (``recompute=True``).

A recomputed stage keeps only its inputs for the backward pass and runs its forward again
there (``torch.utils.checkpoint``, non-reentrant, with the random state restored so dropout
draws the same masks): less resident memory for about one more forward of that stage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint


def recomputed(fn: Callable[..., torch.Tensor], enabled: bool, *args: Any) -> torch.Tensor:
    """``fn(*args)``; when ``enabled`` and gradients are being recorded, its activations are
    recomputed in the backward pass instead of kept."""
    if enabled and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=True)
    return fn(*args)
