"""Audio extractors: log-mel frame sequences computed with a batched torch STFT.

The mel filter bank comes from ``transformers.audio_utils.mel_filter_bank`` (Slaney's mel scale
and area normalisation, as librosa's default bank), a well-kept implementation already among
our dependencies. docs/EXTRACTORS.md gives the librosa call that computes the same log-mel.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from harness.data.types import RawMedia
from harness.extractors.base import Extractor
from harness.options import PositiveFloat, PositiveInt
from harness.registry import EXTRACTORS
from harness.runtime import machine_independent_threads


@lru_cache(maxsize=8)
def _mel_bank(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=20.0,
        max_frequency=sample_rate / 2,
        sampling_rate=sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.tensor(bank, dtype=torch.float32)  # [F, n_mels]


def logmel(waveforms: torch.Tensor, sample_rate: int, n_mels: int, win_ms: float, hop_ms: float) -> torch.Tensor:
    """Log-mel energies of a batch of equal-length waveforms ``[B, S]`` -> ``[B, T, n_mels]``.

    ``T = 1 + S // hop`` (centred frames). Works on any device; the STFT runs in float32.
    """
    win = int(round(sample_rate * win_ms / 1000))
    hop = int(round(sample_rate * hop_ms / 1000))
    n_fft = 1 << (win - 1).bit_length()
    window = torch.hann_window(win, device=waveforms.device)
    spec = torch.stft(waveforms.float(), n_fft=n_fft, hop_length=hop, win_length=win, window=window,
                      center=True, pad_mode="constant", return_complex=True)
    power = spec.abs().pow(2).transpose(1, 2)  # [B, T, F]
    mel = power @ _mel_bank(n_fft, n_mels, sample_rate).to(waveforms.device)
    return torch.log(mel + 1e-6)


@EXTRACTORS.register("logmel", modality="audio")
class LogMel(Extractor):
    """Log-mel frame sequence of the waveform (``n_mels`` bands, ``hop_ms`` frame step)."""

    modality = "audio"
    name = "logmel"

    def __init__(self, n_mels: PositiveInt = 40, win_ms: PositiveFloat = 25.0, hop_ms: PositiveFloat = 20.0,
                 sample_rate: PositiveInt = 16000) -> None:
        self.n_mels = int(n_mels)
        self.win_ms = float(win_ms)
        self.hop_ms = float(hop_ms)
        self.sample_rate = int(sample_rate)

    @property
    def dim(self) -> int:
        return self.n_mels

    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        waves = []
        for i, m in enumerate(media):
            if m.waveform is None:
                raise ValueError(f"logmel: item {i} has no waveform")
            if m.sample_rate != self.sample_rate:
                raise ValueError(f"logmel: item {i} has sample rate {m.sample_rate} Hz, expected {self.sample_rate} Hz")
            waves.append(np.asarray(m.waveform, dtype=np.float32))
        if not waves:
            return []
        # One waveform at a time and on one thread: an utterance's features never depend on what
        # it was extracted with (zero padding, a batched FFT plan) or on the machine's thread count.
        hop = int(round(self.sample_rate * self.hop_ms / 1000))
        out = []
        with machine_independent_threads():
            for i, w in enumerate(waves):
                if len(w) < 2:
                    raise ValueError(f"logmel: item {i} has {len(w)} samples; at least 2 are needed")
                feats = logmel(torch.tensor(w)[None], self.sample_rate, self.n_mels, self.win_ms, self.hop_ms)
                out.append(feats[0, : 1 + len(w) // hop].contiguous())
        return out
