"""Unimodal baselines: one modality, a recurrent encoder and an MLP head.

The floor every fusion method must beat. Registered as ``text-only``, ``audio-only`` and
``video-only`` (utterance level, sequence inputs ``[B, T, D]``).
"""

from __future__ import annotations

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import SequenceEncoder, mlp
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.options import DropoutRate, PositiveInt
from harness.registry import MODELS
from harness.tuning import Choice, LogUniform, Uniform


class Unimodal(BenchModel):
    """Bidirectional GRU over one modality's frames, then a two-layer head."""

    level = "utterance"
    modality = ""

    def __init__(self, spec: DataSpec, hidden: PositiveInt = 64, dropout: DropoutRate = 0.2) -> None:
        super().__init__(spec)
        if self.modality not in spec.dims:
            raise ValueError(f"{type(self).__name__} needs the {self.modality!r} modality; the data has {list(spec.dims)}")
        self.encoder = SequenceEncoder(spec.dims[self.modality], hidden, dropout)
        self.head = mlp(self.encoder.out_dim, hidden, spec.output_dim, dropout)

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        m = self.modality
        z = self.encoder(batch.inputs[m], batch.lengths[m])
        return ModelOutput(squeeze_regression(self.head(z), self.spec))


UNIMODAL_SPACE = {"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "hidden": Choice([32, 64, 128])}


@MODELS.register("text-only", search_space=UNIMODAL_SPACE, level="utterance", modalities=["text"], paper="unimodal baseline")
class TextOnly(Unimodal):
    """Text-only baseline: BiGRU over the word sequence."""

    modality = "text"


@MODELS.register("audio-only", search_space=UNIMODAL_SPACE, level="utterance", modalities=["audio"], paper="unimodal baseline")
class AudioOnly(Unimodal):
    """Audio-only baseline: BiGRU over the acoustic frames."""

    modality = "audio"


@MODELS.register("video-only", search_space=UNIMODAL_SPACE, level="utterance", modalities=["video"], paper="unimodal baseline")
class VideoOnly(Unimodal):
    """Video-only baseline: BiGRU over the visual frames."""

    modality = "video"
