"""Feature extractors turn raw media into per-utterance ``[T, D]`` feature tensors.

An extractor is a registered class with a ``modality``, an output ``dim`` and
``extract(media) -> list[Tensor[T, D]]`` over a list of :class:`RawMedia`. Its ``config()``
(name plus constructor parameters) keys on-disk caches of extracted features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from harness.data.types import RawMedia


class Extractor:
    modality: ClassVar[str] = ""
    name: ClassVar[str] = ""

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Name and parameters: everything that changes the output."""
        params = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {"name": self.name, **params}

    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        raise NotImplementedError

    def __call__(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        return self.extract(media)
