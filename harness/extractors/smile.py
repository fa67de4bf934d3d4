"""openSMILE feature sets through audEERING's ``opensmile`` package (an optional extra).

``opensmile`` runs the openSMILE library and configuration files shipped inside its wheel
(nothing is downloaded) on the waveform, exactly as ``opensmile.Smile(feature_set,
feature_level).process_signal(waveform, sample_rate)`` does:

* ``level="functionals"``: one vector per utterance, ``[1, D]`` (IS10_paraling: the 1582
  features of the IEMOCAP conversation benchmarks; eGeMAPSv02: 88; ComParE_2016: 6373);
* ``level="lld"``: the low-level descriptors, one row per 10 ms frame, ``[T, D]``.

Licence: the openSMILE library inside the wheel is under audEERING's research licence (free
for research and education, not for commercial use), although the package's metadata
classifier says MIT. It is therefore an optional extra (``pip install 'mcer-bench[opensmile]'``),
and mcer-bench itself (MIT) does not need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
import torch

from harness.data.types import RawMedia
from harness.extractors.base import Extractor
from harness.options import Range
from harness.registry import EXTRACTORS

FEATURE_SETS = {  # openSMILE configuration name -> member of opensmile.FeatureSet
    "IS09_emotion": "IS09",
    "IS10_paraling": "IS10",
    "IS13_ComParE": "IS13",
    "ComParE_2016": "ComParE_2016",
    "eGeMAPSv02": "eGeMAPSv02",
    "emobase": "emobase",
}
LEVELS = {"functionals": "Functionals", "lld": "LowLevelDescriptors"}  # -> member of opensmile.FeatureLevel
INSTALL_HINT = ("install the optional extra: pip install 'mcer-bench[opensmile]' (openSMILE is under audEERING's "
                "research licence: non-commercial use only)")


@EXTRACTORS.register("opensmile", modality="audio", licence="audEERING research licence (non-commercial)")
class OpenSmile(Extractor):
    """openSMILE functionals ``[1, D]`` or low-level descriptors ``[T, D]`` of one feature set."""

    modality = "audio"
    name = "opensmile"

    def __init__(self, feature_set: Literal["IS09_emotion", "IS10_paraling", "IS13_ComParE", "ComParE_2016",
                                             "eGeMAPSv02", "emobase"] = "IS10_paraling",
                 level: Literal["functionals", "lld"] = "functionals",
                 sample_rate: Annotated[int, Range(8000, 192000)] = 16000) -> None:
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"opensmile: feature_set {feature_set!r} is not a feature set openSMILE knows here; "
                             f"known: {', '.join(FEATURE_SETS)}")
        if level not in LEVELS:
            raise ValueError(f"opensmile: level must be 'functionals' or 'lld', got {level!r}")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 192000:
            raise ValueError(f"opensmile: sample_rate must be an int in [8000, 192000] Hz, got {sample_rate!r}")
        try:
            import opensmile
        except ImportError as exc:
            raise ValueError(f"opensmile: the 'opensmile' package is not installed; {INSTALL_HINT}") from exc
        self.feature_set = feature_set
        self.level = level
        self.sample_rate = sample_rate
        self.opensmile_version = opensmile.__version__
        self._smile = opensmile.Smile(feature_set=opensmile.FeatureSet[FEATURE_SETS[feature_set]],
                                      feature_level=opensmile.FeatureLevel[LEVELS[level]])

    @property
    def dim(self) -> int:
        return len(self._smile.feature_names)

    @property
    def feature_names(self) -> list[str]:
        """openSMILE's name of each output column, in order."""
        return list(self._smile.feature_names)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "feature_set": self.feature_set, "level": self.level,
                "sample_rate": self.sample_rate, "opensmile_version": self.opensmile_version}

    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        out = []
        for i, m in enumerate(media):
            if m.waveform is None:
                raise ValueError(f"opensmile: item {i} has no waveform")
            if m.sample_rate != self.sample_rate:
                raise ValueError(f"opensmile: item {i} has sample rate {m.sample_rate} Hz, expected {self.sample_rate} Hz")
            frame = self._smile.process_signal(np.asarray(m.waveform, dtype=np.float32), self.sample_rate)
            x = frame.to_numpy(dtype=np.float32)
            if x.shape[0] == 0:
                raise ValueError(f"opensmile: item {i} ({len(m.waveform)} samples) is too short for one "
                                 f"{self.feature_set} {self.level} frame")
            out.append(torch.from_numpy(np.array(x, dtype=np.float32, order="C")))  # a writable copy
        return out
