"""Fixed transforms on top of another extractor: a random projection to a chosen width, and a
standardisation with fixed statistics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from harness.data.types import RawMedia
from harness.extractors.base import Extractor, extractor_from_config
from harness.options import PositiveInt
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

    def __init__(self, base: dict[str, Any], dim: PositiveInt, seed: int = 0) -> None:
        if not isinstance(base, dict) or "name" not in base:
            raise ValueError(f"projected: base must be an extractor config with a 'name' key, got {base!r}")
        self.base = dict(base)
        self.out_dim = int(dim)
        self.seed = int(seed)
        self._base = extractor_from_config(self.base)
        self.modality = self._base.modality  # type: ignore[misc]
        g = torch.Generator().manual_seed(self.seed)
        self._matrix = torch.randn(self._base.dim, self.out_dim, generator=g) / self._base.dim ** 0.5

    @property
    def dim(self) -> int:
        return self.out_dim

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "base": self.base, "dim": self.out_dim, "seed": self.seed}

    def runtime(self) -> dict[str, str]:
        return self._base.runtime()

    def item_stats(self) -> list[dict[str, int]]:
        return self._base.item_stats()

    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        with machine_independent_threads():  # per-item products on one thread: see LogMel.extract
            return [x.float() @ self._matrix for x in self._base.extract(media)]


@EXTRACTORS.register("standardized", modality="any")
class Standardized(Extractor):
    """Features of ``base`` standardised per dimension with fixed statistics:
    ``(x - mean) / std``, ``[T, D]`` -> ``[T, D]``.

    ``mean`` and ``std`` are constants (e.g. computed once from a dataset's clean train split
    and stored in its card), so corrupted media re-extracted later land in the same space, and
    a corruption's effect is never normalised away.
    """

    name = "standardized"

    def __init__(self, base: dict[str, Any], mean: list[float], std: list[float]) -> None:
        if not isinstance(base, dict) or "name" not in base:
            raise ValueError(f"standardized: base must be an extractor config with a 'name' key, got {base!r}")
        self.base = dict(base)
        self._base = extractor_from_config(self.base)
        self.modality = self._base.modality  # type: ignore[misc]
        if len(mean) != self._base.dim or len(std) != self._base.dim or any(not s > 0 for s in std):
            raise ValueError(f"standardized: mean and std need {self._base.dim} values each (std > 0), got "
                             f"{len(mean)} and {len(std)}")
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        self._mean = torch.tensor(self.mean, dtype=torch.float32)
        self._std = torch.tensor(self.std, dtype=torch.float32)

    @property
    def dim(self) -> int:
        return self._base.dim

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "base": self.base, "mean": self.mean, "std": self.std}

    def runtime(self) -> dict[str, str]:
        return self._base.runtime()

    def item_stats(self) -> list[dict[str, int]]:
        return self._base.item_stats()

    @classmethod
    def fitted(cls, base: Extractor, features: list[torch.Tensor]) -> Standardized:
        """A standardiser of ``base`` with the per-dimension mean and std of ``features`` (all
        frames pooled), rounded to 6 significant digits so the config stays readable."""
        x = torch.cat([f.float() for f in features])
        mean = [float(f"{v:.6g}") for v in x.mean(0).tolist()]
        std = [float(f"{max(v, 1e-3):.6g}") for v in x.std(0).tolist()]
        return cls(base.config(), mean, std)

    def apply(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        return [(f.float() - self._mean) / self._std for f in features]

    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        return self.apply(self._base.extract(media))
