"""Feature-level corruptions, for datasets that ship only features (MOSI/MOSEI/IEMOCAP files).

Each acts on one modality's ``[T, D]`` float32 features and keeps shape and dtype.
"""

from __future__ import annotations

import numpy as np
import torch

from corruptions.schedules import Schedule, check_schedule, gate, snr_for
from harness.corruption import Corruption, SeverityTable
from harness.data.types import Utterance
from harness.registry import CORRUPTIONS


class FeatureCorruption(Corruption):
    """Per-utterance feature corruption that also knows the utterance's dialogue position
    (``position`` = index / (len(dialogue) - 1), used by the ``rising`` schedule)."""

    level = "features"

    def check_utterance(self, utt: Utterance) -> None:
        self._check(utt)

    def _check(self, utt: Utterance) -> torch.Tensor:
        if self.modality not in utt.features:
            raise ValueError(f"{self.name}: utterance {utt.uid!r} has no {self.modality!r} features "
                             f"(it has {sorted(utt.features)})")
        return utt.features[self.modality]


@CORRUPTIONS.register("feature-gaussian")
class FeatureGaussian(FeatureCorruption):
    """Additive Gaussian noise on one modality's features at a feature SNR (dB).

    The noise power is the utterance's own mean squared feature value divided by
    ``10^(SNR/10)``, so every utterance gets the same SNR whatever its feature scale.
    ``schedule`` (see :mod:`corruptions.schedules`) gates the noise into bursts or single-frame
    spikes along ``T`` (same total noise energy) or lowers the SNR through the dialogue.
    """

    title = "Feature noise"
    table = SeverityTable("snr_db", "dB", (float("inf"), 20.0, 10.0, 5.0, 0.0, -5.0), harsher="decreasing")

    def __init__(self, modality: str = "audio", schedule: Schedule = "stationary") -> None:
        super().__init__(modality)
        self.schedule = check_schedule(schedule, self.name)

    def corrupt_utterance(self, utt: Utterance, severity: int, rng: np.random.Generator,
                          position: float = 0.0) -> Utterance:
        x = self._check(utt)
        # float32 throughout: a float64 draw and power were ~40% of the cost of a corrupted cell
        power = float(torch.mean(x * x))
        snr = snr_for(self.schedule, self.table[severity], position)
        noise = rng.standard_normal(tuple(x.shape), dtype=np.float32)
        g = gate(self.schedule, int(x.shape[0]), rng, unit=0)
        if g is not None:
            noise = noise * g[:, None]
        noise_power = float(np.mean(noise**2)) if g is not None else 1.0
        std = np.sqrt(power / 10 ** (snr / 10.0) / max(noise_power, 1e-30))
        return utt.with_features({self.modality: x + torch.from_numpy(noise) * float(std)})


def _spans(n: int, fraction: float, rng: np.random.Generator, max_span: int) -> np.ndarray:
    """Boolean ``[n]`` mask of random contiguous spans covering at least ``fraction`` of ``n``
    (rounded to whole frames; nothing when ``round(fraction * n) == 0``)."""
    target = int(round(fraction * n))
    m = np.zeros(n, dtype=bool)
    while m.sum() < target:
        width = int(rng.integers(1, max(1, min(max_span, target)) + 1))
        start = int(rng.integers(0, max(1, n - width + 1)))
        m[start:start + width] = True
    return m


@CORRUPTIONS.register("feature-temporal-mask")
class FeatureTemporalMask(FeatureCorruption):
    """Zero out contiguous spans of frames covering a fraction of the sequence (SpecAugment-like)."""

    title = "Masked spans"
    table = SeverityTable("masked_fraction", "of frames", (0.0, 0.1, 0.2, 0.3, 0.5, 0.7))

    def __init__(self, modality: str = "audio") -> None:
        super().__init__(modality)

    def corrupt_utterance(self, utt, severity, rng, position=0.0):
        x = self._check(utt)
        m = _spans(int(x.shape[0]), self.table[severity], rng, max_span=max(1, int(x.shape[0]) // 5))
        y = x.clone()
        y[torch.from_numpy(m)] = 0.0
        return utt.with_features({self.modality: y})


@CORRUPTIONS.register("feature-frame-drop")
class FeatureFrameDrop(FeatureCorruption):
    """Each frame is lost with probability ``drop_rate`` and replaced by the last kept frame
    (what a decoder shows), so ``T`` is kept; a lost first frame is replaced by zeros."""

    title = "Dropped frames"
    table = SeverityTable("drop_rate", "probability", (0.0, 0.1, 0.2, 0.3, 0.5, 0.7))

    def __init__(self, modality: str = "audio") -> None:
        super().__init__(modality)

    def corrupt_utterance(self, utt, severity, rng, position=0.0):
        x = self._check(utt)
        lost = rng.random(int(x.shape[0])) < self.table[severity]
        src = np.where(~lost, np.arange(len(lost)), -1)
        src = np.maximum.accumulate(src)
        y = x[torch.from_numpy(np.maximum(src, 0))].clone()
        y[torch.from_numpy(src < 0)] = 0.0
        return utt.with_features({self.modality: y})


@CORRUPTIONS.register("feature-missing")
class FeatureMissing(FeatureCorruption):
    """Whole-modality removal: with probability ``missing_rate`` an utterance's features are zeroed."""

    title = "Missing modality"
    table = SeverityTable("missing_rate", "probability", (0.0, 0.1, 0.2, 0.3, 0.5, 0.7))

    def __init__(self, modality: str = "audio") -> None:
        super().__init__(modality)

    @classmethod
    def display_title(cls, label, options=None):
        """``Missing audio`` (the modality it removes) when the entry names its modality."""
        modality = (options or {}).get("modality")
        return f"Missing {modality}" if modality else super().display_title(label, options)

    def corrupt_utterance(self, utt, severity, rng, position=0.0):
        x = self._check(utt)
        if rng.random() < self.table[severity]:
            return utt.with_features({self.modality: torch.zeros_like(x)})
        return utt


@CORRUPTIONS.register("feature-shift")
class FeatureShift(FeatureCorruption):
    """Temporal misalignment: the modality is delayed by ``round(shift_fraction * T)`` frames
    (the first frame repeats at the start, the end is cut). Utterance-level vectors (``T = 1``)
    are unchanged."""

    title = "Misalignment"
    table = SeverityTable("shift_fraction", "of frames", (0.0, 0.05, 0.1, 0.2, 0.3, 0.5))

    def __init__(self, modality: str = "audio") -> None:
        super().__init__(modality)

    def corrupt_utterance(self, utt, severity, rng, position=0.0):
        x = self._check(utt)
        t = int(x.shape[0])
        k = min(t - 1, int(round(self.table[severity] * t)))
        if k <= 0:
            return utt
        y = torch.cat([x[:1].expand(k, -1), x[: t - k]], dim=0).clone()
        return utt.with_features({self.modality: y})
