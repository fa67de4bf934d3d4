"""The corruption contract: a pure function of (input, severity, seed, utterance id).

Every corruption has a fixed :class:`SeverityTable` mapping severity 0 (clean, the identity)
and 1..5 to a physical parameter that grows monotonically harsher (SNR in dB, blur sigma,
drop rate...), like imagecorruptions' ``corrupt(x, name, severity)``. Randomness comes only
from :func:`utterance_rng`, seeded by the corruption's name, the severity, the sweep's
corruption seed and the utterance id, so every model sees the identical corrupted test set
(paired corruption, DESIGN.md rule 1) whatever the batching or order.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from harness.data.types import Dialogue, Utterance

MAX_SEVERITY = 5


@dataclass(frozen=True)
class SeverityTable:
    """``values[s]`` is the physical parameter at severity ``s`` (index 0 = clean)."""

    parameter: str
    unit: str
    values: tuple[float, ...]
    harsher: str = "increasing"  # "increasing" or "decreasing" (e.g. SNR falls as noise grows)

    def __post_init__(self) -> None:
        if len(self.values) != MAX_SEVERITY + 1:
            raise ValueError(f"a severity table needs {MAX_SEVERITY + 1} values (0..{MAX_SEVERITY}), got {len(self.values)}")
        if self.harsher not in ("increasing", "decreasing"):
            raise ValueError(f"harsher must be 'increasing' or 'decreasing', got {self.harsher!r}")
        v = [float(x) for x in self.values]
        pairs = zip(v, v[1:])
        ok = all(b > a for a, b in pairs) if self.harsher == "increasing" else all(b < a for a, b in zip(v, v[1:]))
        if not ok:
            raise ValueError(f"severity table for {self.parameter!r} is not strictly {self.harsher}: {self.values}")

    def __getitem__(self, severity: int) -> float:
        return self.values[check_severity(severity)]

    def to_dict(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "unit": self.unit, "values": [_jsonable(x) for x in self.values],
                "harsher": self.harsher}


def _jsonable(x: float) -> float | str:
    return str(x) if isinstance(x, float) and math.isinf(x) else x


def check_severity(severity: Any) -> int:
    """Return ``severity`` as an int in 0..5 or raise ``ValueError`` naming the bad value."""
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)):
        raise ValueError(f"severity must be an integer in 0..{MAX_SEVERITY}, got {severity!r}")
    if not 0 <= int(severity) <= MAX_SEVERITY:
        raise ValueError(f"severity must be in 0..{MAX_SEVERITY}, got {severity}")
    return int(severity)


def utterance_rng(seed: int, *keys: object) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (name, severity, uid...)."""
    text = "|".join([str(int(seed)), *map(str, keys)])
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


class Corruption:
    """Base class. Subclasses set ``name``, ``level`` (``"features"`` or ``"raw"``), ``table``
    and implement :meth:`corrupt_utterance`; vectorised ones may override :meth:`__call__`."""

    name: ClassVar[str] = ""
    level: ClassVar[str] = "features"
    table: ClassVar[SeverityTable]

    def __init__(self, modality: str) -> None:
        self.modality = modality

    def config(self) -> dict[str, Any]:
        """Name and constructor parameters (used in cache keys and stored provenance)."""
        return {"name": self.name, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    def corrupt_utterance(self, utt: Utterance, severity: int, rng: np.random.Generator) -> Utterance:
        raise NotImplementedError

    def __call__(self, dialogues: Sequence[Dialogue], severity: int, seed: int = 0) -> list[Dialogue]:
        """Corrupted copies of ``dialogues`` (the input is never modified). Severity 0 returns
        the input dialogues unchanged."""
        severity = check_severity(severity)
        if severity == 0:
            return list(dialogues)
        out = []
        for d in dialogues:
            utts = [self.corrupt_utterance(u, severity, utterance_rng(seed, self.name, self.modality, severity, u.uid))
                    for u in d.utterances]
            out.append(Dialogue(d.dialogue_id, utts))
        return out
