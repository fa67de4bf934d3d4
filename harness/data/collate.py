"""Batching for the two model levels.

``utterance`` models get :class:`UtteranceBatch`: per modality ``[B, T, D]`` zero-padded
sequences plus lengths. ``dialogue`` models get :class:`DialogueBatch`: per modality
``[B, N, D]`` utterance vectors (each utterance's frames pooled by the model's declared
rule) with an utterance mask and speaker ids. Models never parse files or pad by hand.

This is where every input enters a model, so it is checked here: a missing modality, a
feature tensor that is not ``[T >= 1, D]`` with the spec's ``D``, NaN or inf, or a dialogue
without utterances raise :class:`InputError` (a ``ValueError``) naming the utterance and
the modality, instead of an error from deep inside a model or a meaningless prediction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from harness.data.types import DataSpec, Dialogue, Utterance

POOLINGS: tuple[str, ...] = ("mean", "max", "first", "last")
IGNORE_INDEX = -100  # class label at padding positions (torch's cross-entropy default)


class InputError(ValueError):
    """Model input that breaks the data model; the message names the utterance and modality."""


def check_utterance(u: Utterance, spec: DataSpec) -> None:
    """Raise :class:`InputError` unless every modality of ``spec`` is a real ``[T >= 1, D]`` tensor."""
    for m, d in spec.dims.items():
        x = u.features.get(m)
        if x is None:
            raise InputError(f"utterance {u.uid!r}: modality {m!r} is missing (it has {sorted(u.features)})")
        if not isinstance(x, torch.Tensor):
            raise InputError(f"utterance {u.uid!r}: modality {m!r} is a {type(x).__name__}, expected a torch.Tensor")
        if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != d or x.is_complex() or x.dtype == torch.bool:
            raise InputError(f"utterance {u.uid!r}: modality {m!r} has shape {tuple(x.shape)} and dtype {x.dtype}, "
                             f"expected a real [T>=1, {d}] tensor")


def _check_finite(x: torch.Tensor, modality: str, uids: Sequence[str]) -> None:
    """``x``: ``[B, ...]``; raise :class:`InputError` naming the first item with NaN/inf."""
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = (~finite).reshape(x.shape[0], -1).any(dim=1)
        first = int(bad.nonzero()[0, 0])
        kinds = "NaN" if bool(torch.isnan(x).any()) else "inf"
        raise InputError(f"utterance {uids[first]!r}: modality {modality!r} has non-finite values ({kinds}); "
                         f"{int((~finite).sum())} in this batch (load with nonfinite='zero' to repair them to 0)")


def pool(x: torch.Tensor, rule: str) -> torch.Tensor:
    """Pool a frame sequence ``[T, D]`` into one vector ``[D]`` by ``rule``."""
    if rule == "mean":
        return x.mean(dim=0)
    if rule == "max":
        return x.max(dim=0).values
    if rule == "first":
        return x[0]
    if rule == "last":
        return x[-1]
    raise ValueError(f"pooling rule must be one of {POOLINGS}, got {rule!r}")


class _Movable:
    """``.to(device)`` for dataclass batches: moves every tensor field (and dict of tensors)."""

    def to(self, device: torch.device | str, non_blocking: bool = False):  # type: ignore[no-untyped-def]
        moved = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                v = v.to(device, non_blocking=non_blocking)
            elif isinstance(v, dict):
                v = {k: t.to(device, non_blocking=non_blocking) for k, t in v.items()}
            moved[f.name] = v
        return type(self)(**moved)


@dataclass
class UtteranceBatch(_Movable):
    """``inputs[m]``: float ``[B, T_m, D_m]`` zero-padded; ``lengths[m]``: long ``[B]`` (>= 1).

    ``labels``: long ``[B]`` or None; ``scores``: float ``[B]`` or None; ``speakers``: long ``[B]``.
    """

    inputs: dict[str, torch.Tensor]
    lengths: dict[str, torch.Tensor]
    speakers: torch.Tensor
    labels: torch.Tensor | None
    scores: torch.Tensor | None
    uids: list[str]

    level = "utterance"

    @property
    def size(self) -> int:
        return len(self.uids)

    def frame_mask(self, modality: str) -> torch.Tensor:
        """Bool ``[B, T_m]``, True at real frames of ``modality``."""
        x = self.inputs[modality]
        t = torch.arange(x.shape[1], device=x.device)
        return t[None, :] < self.lengths[modality][:, None]


@dataclass
class DialogueBatch(_Movable):
    """``inputs[m]``: float ``[B, N, D_m]``; ``mask``: bool ``[B, N]`` (True = real utterance).

    ``speakers``: long ``[B, N]`` in ``0..S-1`` (0 at padding; use ``mask``). ``labels``: long
    ``[B, N]`` with ``IGNORE_INDEX`` at padding, or None. ``scores``: float ``[B, N]`` (0 at
    padding) or None. ``uids[b][n]`` names utterance ``n`` of dialogue ``b``.
    """

    inputs: dict[str, torch.Tensor]
    mask: torch.Tensor
    speakers: torch.Tensor
    labels: torch.Tensor | None
    scores: torch.Tensor | None
    uids: list[list[str]]

    level = "dialogue"

    @property
    def size(self) -> int:
        return int(self.mask.sum())


Batch = UtteranceBatch | DialogueBatch


def _labels(utts: Sequence[Utterance], spec: DataSpec) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if spec.task == "classification":
        for u in utts:
            if u.label is None:
                raise InputError(f"utterance {u.uid!r} has no class label but the task is classification")
            if isinstance(u.label, bool) or not isinstance(u.label, (int, np.integer)) \
                    or not 0 <= u.label < int(spec.num_classes or 0):
                raise InputError(f"utterance {u.uid!r}: label {u.label!r} is not a class index in "
                                 f"0..{int(spec.num_classes or 0) - 1}")
        return torch.tensor([u.label for u in utts], dtype=torch.long), None
    for u in utts:
        if u.score is None:
            raise InputError(f"utterance {u.uid!r} has no regression score but the task is regression")
        if isinstance(u.score, bool) or not isinstance(u.score, (int, float, np.number)) or not math.isfinite(u.score):
            raise InputError(f"utterance {u.uid!r}: regression score {u.score!r} is not a finite number")
    return None, torch.tensor([u.score for u in utts], dtype=torch.float32)


def collate_utterances(utts: Sequence[Utterance], spec: DataSpec) -> UtteranceBatch:
    """Pad each modality of ``utts`` to the longest sequence in the batch."""
    if not utts:
        raise ValueError("cannot collate an empty list of utterances")
    for u in utts:
        check_utterance(u, spec)
    inputs, lengths = {}, {}
    for m, d in spec.dims.items():
        seqs = [u.features[m] for u in utts]
        lens = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
        out = torch.zeros(len(seqs), int(lens.max()), d, dtype=torch.float32)
        for i, s in enumerate(seqs):
            out[i, : s.shape[0]] = s
        _check_finite(out, m, [u.uid for u in utts])
        inputs[m], lengths[m] = out, lens
    labels, scores = _labels(utts, spec)
    speakers = torch.tensor([u.speaker for u in utts], dtype=torch.long)
    return UtteranceBatch(inputs, lengths, speakers, labels, scores, [u.uid for u in utts])


def collate_dialogues(dialogues: Sequence[Dialogue], spec: DataSpec, pooling: str = "mean") -> DialogueBatch:
    """Pool every utterance to a vector by ``pooling`` and pad dialogues to the longest one."""
    if not dialogues:
        raise ValueError("cannot collate an empty list of dialogues")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling rule must be one of {POOLINGS}, got {pooling!r}")
    for dlg in dialogues:
        if not dlg.utterances:
            raise InputError(f"dialogue {dlg.dialogue_id!r} has no utterances; a dialogue needs at least one")
        for u in dlg.utterances:
            check_utterance(u, spec)
    b, n = len(dialogues), max(len(d) for d in dialogues)
    inputs = {m: torch.zeros(b, n, d, dtype=torch.float32) for m, d in spec.dims.items()}
    mask = torch.zeros(b, n, dtype=torch.bool)
    speakers = torch.zeros(b, n, dtype=torch.long)
    classification = spec.task == "classification"
    labels = torch.full((b, n), IGNORE_INDEX, dtype=torch.long) if classification else None
    scores = None if classification else torch.zeros(b, n, dtype=torch.float32)
    uids: list[list[str]] = []
    for i, dlg in enumerate(dialogues):
        utts = dlg.utterances
        for m in spec.dims:
            inputs[m][i, : len(utts)] = torch.stack([pool(u.features[m], pooling) for u in utts])
            _check_finite(inputs[m][i, : len(utts)], m, [u.uid for u in utts])
        mask[i, : len(utts)] = True
        speakers[i, : len(utts)] = torch.tensor([u.speaker for u in utts], dtype=torch.long)
        lab, sc = _labels(utts, spec)
        if labels is not None and lab is not None:
            labels[i, : len(utts)] = lab
        if scores is not None and sc is not None:
            scores[i, : len(utts)] = sc
        uids.append([u.uid for u in utts])
    return DialogueBatch(inputs, mask, speakers, labels, scores, uids)


def flat_targets(batch: Batch) -> torch.Tensor:
    """Targets of the real utterances in batch order: long ``[M]`` labels or float ``[M]`` scores."""
    t = batch.labels if batch.labels is not None else batch.scores
    assert t is not None
    return t[batch.mask] if isinstance(batch, DialogueBatch) else t


def flat_uids(batch: Batch) -> list[str]:
    """Utterance ids of the real utterances, in the order :func:`flat_targets` uses."""
    if isinstance(batch, DialogueBatch):
        return [uid for row in batch.uids for uid in row]
    return list(batch.uids)


def flat_output(output: torch.Tensor, batch: Batch) -> torch.Tensor:
    """A model's output restricted to real utterances: ``[M, C]`` logits or ``[M]`` scores."""
    if isinstance(batch, DialogueBatch):
        return output[batch.mask]
    return output
