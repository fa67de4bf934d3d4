"""Linear resampling of padded sequences as one batched product with a fixed interpolation matrix.

``F.interpolate(mode="linear")`` has no deterministic CUDA backward (its gradient scatters with
atomics), so a seeded GPU run that trains through it is not reproducible. Here the
interpolation weights form a ``[B, steps, T]`` matrix that depends only on the lengths; the
forward is ``M @ x`` and the backward ``M^T @ grad``: plain batched products, deterministic on
every device, and one call for the whole batch instead of one per sample.
"""

from __future__ import annotations

import torch


def interpolation_matrix(lengths: torch.Tensor, steps: int, frames: int, dtype: torch.dtype = torch.float32
                         ) -> torch.Tensor:
    """Weights ``[B, steps, frames]`` of linear interpolation with aligned corners.

    Row ``s`` of sample ``b`` reads position ``s (L_b - 1) / (steps - 1)`` of that sample's
    first ``L_b = lengths[b]`` frames (``L_b`` at least 1; a one-frame sample is repeated).
    Same weights as ``F.interpolate(x, size=steps, mode="linear", align_corners=True)``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D [B], got shape {tuple(lengths.shape)}")
    device = lengths.device
    last = (lengths.clamp(min=1, max=frames) - 1).to(torch.float64)  # [B]
    s = torch.arange(steps, device=device, dtype=torch.float64)
    pos = s[None, :] * (last[:, None] / (steps - 1)) if steps > 1 else torch.zeros(len(lengths), 1, device=device,
                                                                                       dtype=torch.float64)
    lo = pos.floor().clamp(max=last[:, None])
    hi = (lo + 1).minimum(last[:, None])
    w = (pos - lo)[..., None]
    t = torch.arange(frames, device=device, dtype=torch.float64)
    m = (t == lo[..., None]) * (1 - w) + (t == hi[..., None]) * w  # lo == hi at the end: weight 1
    return m.to(dtype)


def linear_resample(x: torch.Tensor, lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """Resample the first ``lengths[b]`` frames of each ``x[b]`` (``[B, T, D]``) linearly to
    ``[B, steps, D]`` (aligned corners); frames past a sample's length are never read."""
    if x.ndim != 3:
        raise ValueError(f"x must be [B, T, D], got shape {tuple(x.shape)}")
    if lengths.shape != (x.shape[0],):
        raise ValueError(f"lengths must be [B] = [{x.shape[0]}], got shape {tuple(lengths.shape)}")
    m = interpolation_matrix(lengths.to(x.device), steps, x.shape[1], dtype=x.dtype)
    return torch.bmm(m, x)
