"""The corruption contract: a pure function of (input, severity, seed, utterance id).

Every corruption has a fixed :class:`SeverityTable` mapping severity 0 (clean, the identity)
and 1..5 to a physical parameter that grows monotonically harsher (SNR in dB, blur sigma,
drop rate...), like imagecorruptions' ``corrupt(x, name, severity)``. Randomness comes only
from :meth:`Corruption.rng_for`, seeded by the corruption's name, the severity, the sweep's
corruption seed and the utterance id, so every model sees the identical corrupted test set
(paired corruption, docs/DESIGN.md rule 1) whatever the batching or order.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from harness.data.types import MODALITIES, Dialogue, Utterance
from harness.errors import RegistryError

MAX_SEVERITY = 5

RAW_FIELD_MODALITY = {"waveform": "audio", "frames": "video", "transcript": "text"}
"""The modality whose raw media a raw-level corruption's ``raw_field`` holds."""


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


def is_severity(value: Any, lowest: int = 0) -> bool:
    """True when ``value`` is an integer (not a bool) in ``lowest..MAX_SEVERITY``: the one
    severity check every config, corruption and table uses."""
    return (not isinstance(value, bool) and isinstance(value, (int, np.integer))
            and lowest <= int(value) <= MAX_SEVERITY)


def check_severities(values: Sequence[Any], lowest: int = 0) -> list[int]:
    """The sorted distinct severities of ``values``; ``ValueError`` naming every value that is
    not an integer in ``lowest..MAX_SEVERITY`` (0 is the clean cell)."""
    bad = [v for v in values if not is_severity(v, lowest)]
    if bad:
        clean = " (0 = clean)" if lowest == 0 else ""
        raise ValueError(f"severities must be integers in {lowest}..{MAX_SEVERITY}{clean}, got {bad!r}")
    return sorted({int(v) for v in values})


def check_severity(severity: Any) -> int:
    """Return ``severity`` as an int in 0..MAX_SEVERITY or raise ``ValueError`` naming it."""
    if not is_severity(severity):
        raise ValueError(f"severity must be an integer in 0..{MAX_SEVERITY} (0 = clean), got {severity!r}")
    return int(severity)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def registered_facts(name: str, cls: type[Corruption], metadata: dict[str, Any]) -> dict[str, Any]:
    """The registry's check of a corruption or defence class registered as ``name``: its facts
    come from the class, and registry metadata that restates one must agree.

    A class that does not set ``name`` itself gets ``name`` (the name seeds the paired stream,
    so an inherited one would share another corruption's noise); one that sets another name is
    refused, as is metadata ``level``, ``parameter`` or ``modality`` that differs from the
    class's. Returns the metadata with those facts filled in from the class, and the
    ``modalities`` its ``modality`` option may take (:meth:`Corruption.modalities`).
    """
    if "name" not in vars(cls) or not cls.name:
        cls.name = name
    table = getattr(cls, "table", None)
    own = cls.modalities()
    facts = {"level": cls.level, "parameter": table.parameter if table is not None else None,
             "modality": own[0] if len(own) == 1 else None}
    problems = [f"its class {cls.__qualname__} sets name = {cls.name!r}"] if cls.name != name else []
    problems += [f"metadata {key}={metadata[key]!r} but the class says {value!r}"
                 for key, value in facts.items() if key in metadata and metadata[key] != value]
    if problems:
        raise RegistryError(f"{name!r} cannot be registered: {'; '.join(problems)} (the class attributes are the "
                            f"one home of these facts; leave them out of the metadata)")
    return {**metadata, **{k: v for k, v in facts.items() if v is not None}, "modalities": list(own)}


def utterance_rng(seed: int, *keys: object) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (name, severity, uid...)."""
    text = "|".join([str(int(seed)), *map(str, keys)])
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def dialogue_position(index: int, n_utterances: int) -> float:
    """An utterance's relative place in its dialogue: 0 for the first, 1 for the last (0 when
    the dialogue has one utterance). The ``rising`` schedule grows noise along it."""
    return index / (n_utterances - 1) if n_utterances > 1 else 0.0


class Corruption:
    """Base class. Subclasses set ``level`` (``"features"`` or ``"raw"``), ``table`` and
    ``title`` and implement :meth:`corrupt_utterance`; vectorised ones may override
    :meth:`__call__`. ``name`` is the registered name: registration sets it (or checks it,
    when the class sets its own), and it seeds the paired-corruption stream (:meth:`rng_for`).
    These class attributes are the one home of a corruption's facts: registration reads its
    level, parameter and modality from them (:func:`registered_facts`)."""

    name: ClassVar[str] = ""
    level: ClassVar[str] = "features"
    table: ClassVar[SeverityTable]
    title: ClassVar[str] = ""
    """The corruption in words, as figures and tables name it (e.g. ``"White noise"``); stored
    with every result row (:meth:`display_title`). Empty: the label in words."""

    def __init__(self, modality: str) -> None:
        own = self.modalities()
        if modality not in own:
            what = f"{own[0]!r} (its raw media are {own[0]})" if len(own) == 1 else f"one of {', '.join(map(repr, own))}"
            raise ValueError(f"{self.name}: modality must be {what}, got {modality!r}")
        self.modality = modality

    @classmethod
    def modalities(cls) -> tuple[str, ...]:
        """The modalities this corruption may be given: a raw-media corruption's is the one its
        raw field holds (waveforms are audio); a feature corruption takes any."""
        field = getattr(cls, "raw_field", "")
        if cls.level == "raw" and field in RAW_FIELD_MODALITY:
            return (RAW_FIELD_MODALITY[field],)
        return tuple(MODALITIES)

    @classmethod
    def display_title(cls, label: str, options: dict[str, Any] | None = None) -> str:
        """How figures and tables name a sweep entry of this corruption labelled ``label`` with
        ``options``: ``audio-white`` -> ``White noise (audio)``, ``audio-white (spikes)`` ->
        ``White noise (audio), spikes``; a label that does not start with the name is its own
        title (``my noise`` -> ``My noise``), as is every label of a corruption without a title."""
        if not cls.title:
            return _capitalised(label.replace("-", " ").replace("_", " "))
        own = cls.modalities()
        modality = own[0] if len(own) == 1 else (options or {}).get("modality")
        words = f"{cls.title} ({modality})" if modality else cls.title
        if label == cls.name:
            return words
        if not label.startswith(cls.name):
            return _capitalised(label.strip("()").strip())
        extra = label[len(cls.name):].strip().strip("()").strip()
        return f"{words}, {extra}" if extra else words

    def config(self) -> dict[str, Any]:
        """Name and constructor parameters (used in cache keys and stored provenance)."""
        return {"name": self.name, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    def rng_for(self, seed: int, severity: int, uid: str) -> np.random.Generator:
        """The paired-corruption key: the only source of randomness for corrupting utterance
        ``uid``. It depends on the sweep's corruption seed, this corruption and modality, the
        severity and the utterance id alone, never on batching or order, so every model is
        evaluated on the identical corrupted input."""
        return utterance_rng(seed, self.name, self.modality, severity, uid)

    def check_utterance(self, utt: Utterance) -> None:
        """Raise ``ValueError`` naming the utterance when it cannot be corrupted (checked for
        every utterance before anything is corrupted)."""

    def corrupt_utterance(self, utt: Utterance, severity: int, rng: np.random.Generator,
                          position: float = 0.0) -> Utterance:
        """A corrupted copy of ``utt`` at ``severity`` (1..5), drawing randomness from ``rng``
        only; ``position`` is :func:`dialogue_position`."""
        raise NotImplementedError

    def __call__(self, dialogues: Sequence[Dialogue], severity: int, seed: int = 0) -> list[Dialogue]:
        """Corrupted copies of ``dialogues`` (the input is never modified). Severity 0 returns
        the input dialogues unchanged."""
        severity = check_severity(severity)
        for d in dialogues:
            for u in d.utterances:
                self.check_utterance(u)
        if severity == 0:
            return list(dialogues)
        out = []
        for d in dialogues:
            n = len(d.utterances)
            utts = [self.corrupt_utterance(u, severity, self.rng_for(seed, severity, u.uid), dialogue_position(i, n))
                    for i, u in enumerate(d.utterances)]
            out.append(Dialogue(d.dialogue_id, utts))
        return out


# --------------------------------------------------------------------------------------
# Raw-media corruptions: corrupt ``utt.raw`` then re-extract the modality's features.
# --------------------------------------------------------------------------------------

NO_EXTRACTOR = "none"


@dataclass
class UttContext:
    """What a raw corruption may use besides the utterance itself.

    ``position`` is the utterance's index in its dialogue divided by ``len(dialogue) - 1``
    (0 for the first, 1 for the last; 0 for one-utterance dialogues). ``pool`` is every
    utterance passed in the same call, sorted by uid (babble noise draws from it).
    """

    position: float
    pool: Sequence[Utterance]


class RawCorruption(Corruption):
    """A corruption of raw media (``utt.raw``) that re-extracts the corrupted modality.

    Extractor configuration (how the corrupted media become features again) comes either
    from the constructor option ``extractor`` (a dict ``{"name": ..., **params}`` as stored
    in ``dataset.card["extractors"][modality]``, or ``"none"`` to corrupt the raw media
    only and leave the features untouched — for galleries and benchmarks), or from
    :meth:`bind`, which returns a copy configured from a dataset's card. Calling an unbound
    raw corruption raises a ``ValueError`` that says how to bind it.

    Subclasses implement :meth:`corrupt_raw` over the whole list of utterances (so they can
    batch by length), drawing randomness only from the per-utterance generators passed in.
    """

    level: ClassVar[str] = "raw"
    raw_field: ClassVar[str] = ""  # "waveform", "frames" or "transcript"

    def __init__(self, modality: str, extractor: dict[str, Any] | str | None = None, device: str = "auto") -> None:
        super().__init__(modality)
        if extractor is not None and extractor != NO_EXTRACTOR and not (isinstance(extractor, dict) and "name" in extractor):
            raise ValueError(f"{self.name}: extractor must be a dict with a 'name' key, {NO_EXTRACTOR!r} or None, "
                             f"got {extractor!r}")
        self.extractor = dict(extractor) if isinstance(extractor, dict) else extractor
        self.device = device

    # -- binding -------------------------------------------------------------------------
    def bind(self, dataset: Any) -> RawCorruption:
        """A copy whose extractor is ``dataset.card["extractors"][self.modality]``."""
        cfg = (getattr(dataset, "card", None) or {}).get("extractors", {}).get(self.modality)
        if not isinstance(cfg, dict) or "name" not in cfg:
            raise ValueError(f"{self.name}: dataset {getattr(dataset, 'name', dataset)!r} has no extractor config for "
                             f"modality {self.modality!r} in card['extractors'] (got {cfg!r}); pass extractor=... instead")
        bound = copy.copy(self)
        bound.extractor = dict(cfg)
        return bound

    def make_extractor(self) -> Any:
        """The extractor instance, ``None`` for ``extractor="none"``; raises when unbound."""
        if self.extractor is None:
            raise ValueError(
                f"{self.name}: raw corruption is not bound to an extractor, so corrupted {self.modality} features cannot "
                f"be recomputed; call .bind(dataset), pass extractor={{'name': ..., **params}}, or extractor='none' "
                f"to corrupt raw media only")
        if self.extractor == NO_EXTRACTOR:
            return None
        from harness.extractors.base import extractor_from_config

        return extractor_from_config(self.extractor)

    def torch_device(self) -> Any:
        from harness.runtime import select_device

        return select_device(self.device)

    # -- the work ------------------------------------------------------------------------
    def corrupt_raw(self, utts: Sequence[Utterance], severity: int, rngs: Sequence[np.random.Generator],
                    contexts: Sequence[UttContext]) -> list[Any]:
        """New values of ``raw.<raw_field>`` for each utterance (same order)."""
        raise NotImplementedError

    def check_raw(self, utts: Sequence[Utterance]) -> None:
        for u in utts:
            value = getattr(u.raw, self.raw_field, None) if u.raw is not None else None
            if value is None:
                raise ValueError(
                    f"{self.name}: utterance {u.uid!r} has no raw {self.raw_field} (raw={'None' if u.raw is None else 'present'});"
                    f" raw-level corruptions need raw media — load the dataset with its raw media (e.g. keep_raw=True) "
                    f"or use a feature-level corruption")

    def __call__(self, dialogues: Sequence[Dialogue], severity: int, seed: int = 0) -> list[Dialogue]:
        severity = check_severity(severity)
        extractor = self.make_extractor()
        utts = [u for d in dialogues for u in d.utterances]
        self.check_raw(utts)
        if severity == 0:
            return list(dialogues)
        raws = self._corrupted_media(dialogues, utts, severity, seed)
        if extractor is None:
            return self._assemble(dialogues, utts, raws, None, None)
        feats = extractor.extract(raws)
        stats = extractor.item_stats() or [{} for _ in raws]
        return self._assemble(dialogues, utts, raws, feats, stats)

    def cached(self, dialogues: Sequence[Dialogue], severity: int, seed: int, cache: Any, keep_raw: bool = True,
               progress: str | None = None) -> list[Dialogue]:
        """What ``self(dialogues, severity, seed)`` gives, with the corrupted features read from
        ``cache`` (an :class:`~harness.extractors.cache.ExtractionCache`) and only the missing
        ones extracted (each stored there, counted once across processes).

        An entry is keyed by the utterance's clean media (:func:`~harness.extractors.cache.media_key`),
        this corruption with its options and a digest of the whole set passed in (a corruption
        may draw on the other utterances, e.g. babble noise, or on dialogue positions), the
        severity, ``seed`` and the extractor's config and runtime. When every entry is cached
        and ``keep_raw`` is false, the media are not corrupted at all: the utterances keep their
        clean raw media (nothing downstream reads it) and get the cached features.
        ``progress``: a progress bar label for the extraction (None: no bar).
        """
        from harness.extractors.cache import ExtractionKey, corruption_id, extract_cached, media_key

        severity = check_severity(severity)
        extractor = self.make_extractor()
        utts = [u for d in dialogues for u in d.utterances]
        self.check_raw(utts)
        if severity == 0 or extractor is None:
            return self(dialogues, severity, seed)
        content = [media_key(u.uid, u.raw, self.raw_field) for u in utts]
        places = [f"{d.dialogue_id}/{i}" for d in dialogues for i in range(len(d))]
        layout = hashlib.sha256("\n".join(f"{p}/{c}" for p, c in zip(places, content)).encode()).hexdigest()
        options = {k: v for k, v in self.config().items() if k not in ("name", "extractor")}
        cid = corruption_id(self.name, {**options, "set": layout})
        keys = [ExtractionKey.of(extractor, c, cid, severity, seed) for c in content]
        found = [cache.get(k) for k in keys]
        missing = [i for i, f in enumerate(found) if f is None]
        if not missing and not keep_raw:
            raws = [u.raw for u in utts]
        else:
            raws = self._corrupted_media(dialogues, utts, severity, seed)
        if missing:
            extracted = extract_cached(extractor, cache, [keys[i] for i in missing], lambda j: raws[missing[j]],
                                       progress=progress)
            for i, f in zip(missing, extracted):
                found[i] = f
        return self._assemble(dialogues, utts, raws, [f.features for f in found], [f.stats for f in found])

    def _corrupted_media(self, dialogues: Sequence[Dialogue], utts: list[Utterance], severity: int,
                         seed: int) -> list[Any]:
        """The corrupted raw media of ``utts`` (every utterance of ``dialogues``, in order)."""
        pool = sorted(utts, key=lambda u: u.uid)
        contexts = [UttContext(dialogue_position(i, len(d)), pool) for d in dialogues for i, _ in enumerate(d.utterances)]
        rngs = [self.rng_for(seed, severity, u.uid) for u in utts]
        values = self.corrupt_raw(utts, severity, rngs, contexts)
        return [replace(u.raw, **{self.raw_field: v}) for u, v in zip(utts, values)]

    def _assemble(self, dialogues: Sequence[Dialogue], utts: list[Utterance], raws: list[Any],
                  feats: Sequence[Any] | None, stats: Sequence[dict[str, int]] | None) -> list[Dialogue]:
        """``dialogues`` again, each utterance with its new raw media and, when given, its new
        features of this modality and the extractor's counts for them."""
        new = []
        for i, u in enumerate(utts):
            nu = replace(u, raw=raws[i])
            if feats is not None:
                nu = nu.with_features({self.modality: feats[i]})
                others = {m: s for m, s in u.extraction_stats.items() if m != self.modality}
                nu.extraction_stats = {**others, **({self.modality: dict(stats[i])} if stats and stats[i] else {})}
            new.append(nu)
        out, k = [], 0
        for d in dialogues:
            out.append(Dialogue(d.dialogue_id, new[k:k + len(d)]))
            k += len(d)
        return out
