"""The data model: utterances grouped into dialogues, split into train / valid / test.

Every modality of an utterance is a float32 tensor ``[T, D]`` (a frame or word sequence;
utterance-level vectors have ``T = 1``). Its length is ``T``: loaders trim padding away, so
a stored tensor never contains padding rows. Raw media may be attached when a dataset has it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch

from harness.metrics import METRIC_SETS

Task = Literal["classification", "regression"]
SPLITS = ("train", "valid", "test")
MODALITIES = ("text", "audio", "video")


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about the data it runs on.

    ``dims`` maps modality name to feature dimension ``D``. Models take their input sizes,
    task and class count from here, never from constants.
    """

    dims: Mapping[str, int]
    task: Task = "classification"
    num_classes: int | None = None
    num_speakers: int = 1
    class_names: tuple[str, ...] | None = None
    score_range: tuple[float, float] | None = None
    metric_set: str = "default"
    """How the test split is scored: ``default`` (the task's metrics; MOSI/MOSEI conventions for
    regression) or ``sims`` (MMSA's CH-SIMS evaluation; regression only)."""

    def __post_init__(self) -> None:
        if not self.dims:
            raise ValueError("DataSpec.dims must name at least one modality, got {}")
        for m, d in self.dims.items():
            if not isinstance(d, (int, np.integer)) or d <= 0:
                raise ValueError(f"DataSpec.dims[{m!r}] must be a positive int, got {d!r}")
        object.__setattr__(self, "dims", {str(m): int(d) for m, d in self.dims.items()})
        if self.task not in ("classification", "regression"):
            raise ValueError(f"DataSpec.task must be 'classification' or 'regression', got {self.task!r}")
        if self.task == "classification":
            if self.num_classes is None or self.num_classes < 2:
                raise ValueError(f"DataSpec.num_classes must be >= 2 for classification, got {self.num_classes!r}")
            if self.class_names is not None and len(self.class_names) != self.num_classes:
                raise ValueError(
                    f"DataSpec.class_names has {len(self.class_names)} names but num_classes={self.num_classes}"
                )
        if self.num_speakers < 1:
            raise ValueError(f"DataSpec.num_speakers must be >= 1, got {self.num_speakers!r}")
        if self.metric_set not in METRIC_SETS:
            raise ValueError(f"DataSpec.metric_set must be one of {', '.join(METRIC_SETS)}, got {self.metric_set!r}")
        if self.metric_set == "sims" and self.task != "regression":
            raise ValueError(f"DataSpec.metric_set 'sims' scores sentiment scores; the task is {self.task!r}")

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.dims)

    @property
    def output_dim(self) -> int:
        """Width of a model's prediction head: C logits, or 1 regression score."""
        return int(self.num_classes) if self.task == "classification" else 1

    @property
    def names(self) -> tuple[str, ...]:
        if self.class_names is not None:
            return tuple(self.class_names)
        return tuple(f"class{i}" for i in range(self.num_classes or 0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "dims": dict(self.dims),
            "task": self.task,
            "num_classes": self.num_classes,
            "num_speakers": self.num_speakers,
            "class_names": list(self.class_names) if self.class_names else None,
            "score_range": list(self.score_range) if self.score_range else None,
            "metric_set": self.metric_set,
        }


@dataclass(frozen=True)
class MediaSource:
    """Where a raw loader decoded an utterance's media from, and how: enough to decode them
    again (the end-to-end deployment profile times that). Spans are ``(start, end)`` seconds."""

    audio: str | None = None
    audio_span: tuple[float, float] | None = None
    sample_rate: int | None = None
    video: str | None = None
    video_span: tuple[float, float] | None = None
    fps: float | None = None
    frame_size: int | None = None
    max_frames: int | None = None


@dataclass
class RawMedia:
    """Raw media of one utterance, any part of which may be absent.

    ``waveform``: float32 ``[S]`` in [-1, 1] at ``sample_rate`` Hz.
    ``frames``: uint8 ``[F, H, W, 3]`` RGB at ``fps`` frames per second.
    ``source``: the files they were decoded from (raw loaders; None for generated media).
    """

    waveform: np.ndarray | None = None
    sample_rate: int | None = None
    frames: np.ndarray | None = None
    fps: float | None = None
    transcript: str | None = None
    source: MediaSource | None = None

    @property
    def duration_s(self) -> float | None:
        if self.waveform is not None and self.sample_rate:
            return len(self.waveform) / float(self.sample_rate)
        if self.frames is not None and self.fps:
            return len(self.frames) / float(self.fps)
        return None


@dataclass
class Utterance:
    """One utterance: stable id, place in its dialogue, speaker, features and labels.

    ``features[m]`` is float32 ``[T_m, D_m]`` with ``T_m >= 1``. ``label`` is a class index,
    ``score`` a regression target; either may be ``None`` when the dataset lacks it.
    ``extraction_stats[m]``: the counts the extractor of modality ``m`` reported for these
    features (e.g. ``{"frames": 40, "frames_without_face": 3}``); empty when it counts nothing.
    """

    uid: str
    dialogue_id: str
    position: int
    speaker: int
    features: dict[str, torch.Tensor]
    label: int | None = None
    score: float | None = None
    raw: RawMedia | None = None
    speaker_name: str | None = None
    extraction_stats: dict[str, dict[str, int]] = field(default_factory=dict)

    def length(self, modality: str) -> int:
        return int(self.features[modality].shape[0])

    def with_features(self, features: dict[str, torch.Tensor]) -> Utterance:
        """A shallow copy with some modalities replaced (used by corruptions)."""
        merged = dict(self.features)
        merged.update(features)
        return replace(self, features=merged)


@dataclass
class Dialogue:
    """A conversation (IEMOCAP, MELD) or a source video (MOSI, MOSEI): utterances in order."""

    dialogue_id: str
    utterances: list[Utterance]

    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self.utterances)


@dataclass
class BenchDataset:
    """A dataset: a ``DataSpec``, three splits of dialogues, and a card of facts about it.

    ``card`` holds what the dataset card prints (source format, repairs made, how the
    validation split was made...). ``metrics`` lists the metrics standard for its task.
    """

    name: str
    spec: DataSpec
    splits: dict[str, list[Dialogue]]
    card: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ValueError(f"dataset {self.name!r} is missing split(s) {missing}; it has {sorted(self.splits)}")
        for split, dialogues in self.splits.items():
            for d in dialogues:
                if not d.utterances:
                    raise ValueError(f"dataset {self.name!r}, split {split!r}: dialogue {d.dialogue_id!r} has no utterances")

    def utterances(self, split: str) -> list[Utterance]:
        return [u for d in self.splits[split] for u in d.utterances]

    def counts(self) -> dict[str, dict[str, int]]:
        return {s: {"dialogues": len(ds), "utterances": sum(len(d) for d in ds)} for s, ds in self.splits.items()}

    def summary(self) -> dict[str, Any]:
        """The dataset card: counts, dims, lengths and label distribution, plus ``card``."""
        out: dict[str, Any] = {"name": self.name, "spec": self.spec.to_dict(), "splits": self.counts()}
        lengths: dict[str, dict[str, float]] = {}
        for m in self.spec.modalities:
            ls = np.array([u.length(m) for s in SPLITS for u in self.utterances(s)], dtype=float)
            if len(ls):
                lengths[m] = {"min": float(ls.min()), "mean": float(ls.mean()), "max": float(ls.max())}
        out["lengths"] = lengths
        labels: dict[str, Any] = {}
        for s in SPLITS:
            us = self.utterances(s)
            if self.spec.task == "classification":
                c = Counter(u.label for u in us)
                labels[s] = {self.spec.names[k]: c.get(k, 0) for k in range(self.spec.num_classes or 0)}
            else:
                sc = np.array([u.score for u in us if u.score is not None], dtype=float)
                labels[s] = (
                    {"mean": float(sc.mean()), "std": float(sc.std()), "min": float(sc.min()), "max": float(sc.max())}
                    if len(sc)
                    else {}
                )
        out["labels"] = labels
        out["card"] = dict(self.card)
        return out


def label_histogram(utterances: Iterable[Utterance], num_classes: int) -> np.ndarray:
    """Counts of each class index among ``utterances`` (int64 ``[C]``)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for u in utterances:
        if u.label is not None:
            counts[u.label] += 1
    return counts


def inverse_frequency_weights(utterances: Sequence[Utterance], num_classes: int) -> torch.Tensor:
    """Class weights ``N / (C * n_c)`` (classes absent from the data get weight 0)."""
    counts = label_histogram(utterances, num_classes).astype(float)
    total = counts.sum()
    w = np.where(counts > 0, total / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)
