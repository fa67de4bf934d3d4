"""Video extractors: simple per-frame descriptors of RGB clips."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from harness.data.types import RawMedia
from harness.extractors.base import Extractor
from harness.options import PositiveInt
from harness.registry import EXTRACTORS
from harness.runtime import machine_independent_threads


def frame_stats(frames: torch.Tensor, grid: int) -> torch.Tensor:
    """Descriptors of uint8 or float frames ``[F, H, W, 3]`` -> float ``[F, 3*grid*grid + 4]``.

    Per frame: the mean of each RGB channel over a ``grid x grid`` grid of cells, the
    standard deviation of each channel, and the mean gradient magnitude of the grey image.
    Pixel values are scaled to [0, 1] first.
    """
    x = frames.float()
    if frames.dtype == torch.uint8:
        x = x / 255.0
    x = x.permute(0, 3, 1, 2)  # [F, 3, H, W]
    cells = F.adaptive_avg_pool2d(x, grid).flatten(1)  # [F, 3*g*g]
    std = x.flatten(2).std(dim=2)  # [F, 3]
    grey = x.mean(dim=1)
    gx = (grey[:, :, 1:] - grey[:, :, :-1]).abs().mean(dim=(1, 2))
    gy = (grey[:, 1:, :] - grey[:, :-1, :]).abs().mean(dim=(1, 2))
    return torch.cat([cells, std, (gx + gy).unsqueeze(1)], dim=1)


@EXTRACTORS.register("frame-stats", modality="video")
class FrameStats(Extractor):
    """Per-frame grid colour means, channel spread and edge energy of an RGB clip."""

    modality = "video"
    name = "frame-stats"

    def __init__(self, grid: PositiveInt = 4) -> None:
        self.grid = int(grid)

    @property
    def dim(self) -> int:
        return 3 * self.grid * self.grid + 4

    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        out = []
        for i, m in enumerate(media):
            if m.frames is None or len(m.frames) == 0:
                raise ValueError(f"frame-stats: item {i} has no frames")
            frames = np.asarray(m.frames)
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise ValueError(f"frame-stats: item {i} frames have shape {frames.shape}, expected [F, H, W, 3]")
            with machine_independent_threads():  # reductions over pixels: fixed thread count (see LogMel.extract)
                out.append(frame_stats(torch.from_numpy(np.ascontiguousarray(frames)), self.grid))
        return out
