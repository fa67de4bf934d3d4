"""MFCC extractor: DCT-II of the log-mel energies, as frames or as utterance statistics.

The DCT is ``scipy.fft.dct(type=2, norm="ortho")`` over the mel bands, keeping the first
``n_mfcc`` coefficients (how these MFCCs relate to librosa's is in docs/EXTRACTORS.md).
``mfcc`` with ``stats=True`` (default) gives one row per utterance, ``[1, 2 * n_mfcc]``: the
mean then the standard deviation over frames of each coefficient (the usual utterance-level
descriptor); ``stats=False`` gives the frame sequence ``[T, n_mfcc]`` (``T = 1 + S // hop``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.fft import dct

from harness.data.types import RawMedia
from harness.extractors.audio import LogMel
from harness.extractors.base import Extractor
from harness.options import PositiveFloat, PositiveInt
from harness.registry import EXTRACTORS
from harness.runtime import machine_independent_threads


def cepstrum(logmel: torch.Tensor, n_mfcc: int) -> torch.Tensor:
    """First ``n_mfcc`` orthonormal DCT-II coefficients of each frame of ``logmel`` ``[T, n_mels]``
    -> float32 ``[T, n_mfcc]`` (computed in float64 by ``scipy.fft.dct``)."""
    c = dct(logmel.detach().cpu().numpy().astype(np.float64), type=2, norm="ortho", axis=-1)[:, :n_mfcc]
    return torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))


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
        out = []
        with machine_independent_threads():  # see LogMel.extract
            for mel in self._logmel.extract(media):  # [T, n_mels] each; errors name the item
                c = cepstrum(mel, self.n_mfcc)
                if self.stats:
                    std = c.std(dim=0, unbiased=False) if c.shape[0] > 1 else torch.zeros(self.n_mfcc)
                    c = torch.cat([c.mean(dim=0), std]).unsqueeze(0)
                out.append(c.contiguous())
        return out
