"""Text extractors that need no model weights.

``hash-embed`` maps every lower-cased word to a fixed pseudo-random vector derived from a
hash of the word, so the same word always gets the same vector, in any run and on any
machine. It is the text encoder of the synthetic dataset; transformer encoders loaded from
a local directory live in their own module.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import torch

from harness.data.types import RawMedia
from harness.extractors.base import Extractor
from harness.options import PositiveInt
from harness.registry import EXTRACTORS

_WORD = re.compile(r"[a-z0-9']+")
EMPTY_TOKEN = "<empty>"


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; an empty transcript gives ``[EMPTY_TOKEN]``."""
    words = _WORD.findall(text.lower())
    return words or [EMPTY_TOKEN]


@EXTRACTORS.register("hash-embed", modality="text")
class HashEmbed(Extractor):
    """Word sequence of fixed pseudo-random word vectors (``dim`` wide, unit expected norm)."""

    modality = "text"
    name = "hash-embed"

    def __init__(self, dim: PositiveInt = 64, salt: str = "mcer-bench") -> None:
        self._dim = int(dim)
        self.salt = str(salt)
        self._cache: dict[str, np.ndarray] = {}

    @property
    def dim(self) -> int:
        return self._dim

    def config(self) -> dict[str, object]:
        return {"name": self.name, "dim": self._dim, "salt": self.salt}

    def vector(self, word: str) -> np.ndarray:
        v = self._cache.get(word)
        if v is None:
            digest = hashlib.blake2b(f"{self.salt}:{word}".encode(), digest_size=8).digest()
            rng = np.random.default_rng(int.from_bytes(digest, "little"))
            v = (rng.standard_normal(self._dim) / np.sqrt(self._dim)).astype(np.float32)
            self._cache[word] = v
        return v

    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        out = []
        for i, m in enumerate(media):
            if m.transcript is None:
                raise ValueError(f"hash-embed: item {i} has no transcript")
            out.append(torch.from_numpy(np.stack([self.vector(w) for w in tokenize(m.transcript)])))
        return out
