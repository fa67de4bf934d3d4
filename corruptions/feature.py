"""Feature-level corruptions, for datasets that ship only features (MOSI/MOSEI/IEMOCAP files)."""

from __future__ import annotations

import numpy as np
import torch

from corruptions.base import Corruption, SeverityTable
from harness.data.types import Utterance
from harness.registry import CORRUPTIONS


@CORRUPTIONS.register("feature-gaussian", level="features", parameter="snr_db")
class FeatureGaussian(Corruption):
    """Additive Gaussian noise on one modality's features at a feature SNR (dB).

    The noise power is the utterance's own mean squared feature value divided by
    ``10^(SNR/10)``, so every utterance gets the same SNR whatever its feature scale.
    """

    name = "feature-gaussian"
    level = "features"
    table = SeverityTable("snr_db", "dB", (float("inf"), 20.0, 10.0, 5.0, 0.0, -5.0), harsher="decreasing")

    def __init__(self, modality: str = "audio") -> None:
        super().__init__(modality)

    def corrupt_utterance(self, utt: Utterance, severity: int, rng: np.random.Generator) -> Utterance:
        x = utt.features[self.modality]
        power = float(x.double().pow(2).mean())
        std = np.sqrt(power / 10 ** (self.table[severity] / 10.0))
        noise = torch.from_numpy(rng.standard_normal(tuple(x.shape)).astype(np.float32)) * std
        return utt.with_features({self.modality: x + noise})
