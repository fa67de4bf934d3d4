"""MFCC extractor: DCT-II of the log-mel energies, as frames or as utterance statistics.

``mfcc`` with ``stats=True`` (default) gives one row per utterance, ``[1, 2 * n_mfcc]``: the
mean then the standard deviation over frames of each coefficient (the usual utterance-level
descriptor); ``stats=False`` gives the frame sequence ``[T, n_mfcc]`` (``T = 1 + S // hop``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from harness.data.types import RawMedia
from harness.extractors.audio import LogMel
from harness.extractors.base import Extractor
from harness.options import PositiveFloat, PositiveInt
from harness.registry import EXTRACTORS
from harness.runtime import machine_independent_threads


@lru_cache(maxsize=8)
def dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Orthonormal DCT-II basis ``[n_in, n_out]``: ``c = x @ D`` (same as scipy ``dct(norm='ortho')[:n_out]``)."""
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    d = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    d[:, 0] /= np.sqrt(2.0)
    return torch.tensor(d, dtype=torch.float32)


@EXTRACTORS.register("mfcc", modality="audio")
class MFCC(Extractor):
    """MFCCs (``n_mfcc`` of ``n_mels`` log-mel bands), utterance mean+std or frame sequence."""

    modality = "audio"
    name = "mfcc"

    def __init__(self, n_mfcc: PositiveInt = 13, n_mels: PositiveInt = 40, win_ms: PositiveFloat = 25.0,
                 hop_ms: PositiveFloat = 10.0, sample_rate: PositiveInt = 16000, stats: bool = True) -> None:
        if n_mfcc > n_mels:
            raise ValueError(f"mfcc: need n_mfcc <= n_mels, got n_mfcc={n_mfcc}, n_mels={n_mels}")
        self.n_mfcc = int(n_mfcc)
        self.n_mels = int(n_mels)
        self.win_ms = float(win_ms)
        self.hop_ms = float(hop_ms)
        self.sample_rate = int(sample_rate)
        self.stats = bool(stats)
        self._logmel = LogMel(n_mels=n_mels, win_ms=win_ms, hop_ms=hop_ms, sample_rate=sample_rate)

    @property
    def dim(self) -> int:
        return 2 * self.n_mfcc if self.stats else self.n_mfcc

    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        basis = dct_matrix(self.n_mels, self.n_mfcc)
        out = []
        with machine_independent_threads():  # see LogMel.extract
            for mel in self._logmel.extract(media):  # [T, n_mels] each; errors name the item
                c = mel @ basis  # [T, n_mfcc]
                if self.stats:
                    std = c.std(dim=0, unbiased=False) if c.shape[0] > 1 else torch.zeros(self.n_mfcc)
                    c = torch.cat([c.mean(dim=0), std]).unsqueeze(0)
                out.append(c.contiguous())
        return out
