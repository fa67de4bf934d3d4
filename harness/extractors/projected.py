"""A fixed random projection on top of another extractor, to give features a chosen width."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from harness.data.types import RawMedia
from harness.extractors.base import Extractor
from harness.registry import EXTRACTORS
from harness.runtime import machine_independent_threads


@EXTRACTORS.register("projected", modality="any")
class Projected(Extractor):
    """Features of ``base`` (an extractor config ``{"name": ..., **params}``) times a fixed
    seeded Gaussian matrix ``[D_base, dim] / sqrt(D_base)``: ``[T, D_base]`` -> ``[T, dim]``.

    Lets a dataset present the input widths of a reference configuration (e.g. 768-d text,
    5-d audio) while its content stays the same; the matrix depends only on ``seed`` and the
    two widths, so re-extracting corrupted media gives features in the same space.
    """

    name = "projected"

    def __init__(self, base: dict[str, Any], dim: int, seed: int = 0) -> None:
        if not isinstance(base, dict) or "name" not in base:
            raise ValueError(f"projected: base must be an extractor config with a 'name' key, got {base!r}")
        if int(dim) < 1:
            raise ValueError(f"projected: dim must be >= 1, got {dim!r}")
        self.base = dict(base)
        self.out_dim = int(dim)
        self.seed = int(seed)
        params = {k: v for k, v in self.base.items() if k != "name"}
        self._base = EXTRACTORS.create(self.base["name"], **params)
        self.modality = self._base.modality  # type: ignore[misc]
        g = torch.Generator().manual_seed(self.seed)
        self._matrix = torch.randn(self._base.dim, self.out_dim, generator=g) / self._base.dim ** 0.5

    @property
    def dim(self) -> int:
        return self.out_dim

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "base": self.base, "dim": self.out_dim, "seed": self.seed}

    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        with machine_independent_threads():  # per-item products on one thread: see LogMel.extract
            return [x.float() @ self._matrix for x in self._base.extract(media)]
