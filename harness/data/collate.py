"""Batching for the two model levels.

``utterance`` models get :class:`UtteranceBatch`: per modality ``[B, T, D]`` zero-padded
sequences plus lengths. ``dialogue`` models get :class:`DialogueBatch`: per modality
``[B, N, D]`` utterance vectors (each utterance's frames pooled by the model's declared
rule) with an utterance mask and speaker ids. Models never parse files or pad by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

import torch

from harness.data.types import DataSpec, Dialogue, Utterance

Pooling = Literal["mean", "max", "first", "last"]
POOLINGS: tuple[str, ...] = ("mean", "max", "first", "last")
IGNORE_INDEX = -100  # class label at padding positions (torch's cross-entropy default)


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
                raise ValueError(f"utterance {u.uid!r} has no class label but the task is classification")
        return torch.tensor([u.label for u in utts], dtype=torch.long), None
    for u in utts:
        if u.score is None:
            raise ValueError(f"utterance {u.uid!r} has no regression score but the task is regression")
    return None, torch.tensor([u.score for u in utts], dtype=torch.float32)


def collate_utterances(utts: Sequence[Utterance], spec: DataSpec) -> UtteranceBatch:
    """Pad each modality of ``utts`` to the longest sequence in the batch."""
    if not utts:
        raise ValueError("cannot collate an empty list of utterances")
    inputs, lengths = {}, {}
    for m, d in spec.dims.items():
        seqs = [u.features[m] for u in utts]
        lens = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
        out = torch.zeros(len(seqs), int(lens.max()), d, dtype=torch.float32)
        for i, s in enumerate(seqs):
            out[i, : s.shape[0]] = s
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
