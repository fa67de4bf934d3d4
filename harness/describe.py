"""FLOPs per utterance of a model, on a random dialogue of its data spec."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.data.collate import collate_dialogues, collate_utterances
from harness.data.types import DataSpec, Dialogue, Utterance
from harness.models import BenchModel


def dummy_dialogue(spec: DataSpec, n_utts: int = 10, frames: int = 20, seed: int = 0) -> Dialogue:
    """A random dialogue of ``n_utts`` utterances with ``frames`` frames per modality."""
    g = torch.Generator().manual_seed(seed)
    utts = [
        Utterance(uid=f"d-u{i}", dialogue_id="d", position=i, speaker=i % spec.num_speakers,
                  features={m: torch.randn(frames, d, generator=g) for m, d in spec.dims.items()},
                  label=0 if spec.task == "classification" else None,
                  score=None if spec.task == "classification" else 0.0)
        for i in range(n_utts)
    ]
    return Dialogue("d", utts)


def flops_per_utterance(model: BenchModel, spec: DataSpec, n_utts: int = 10, frames: int = 20) -> float:
    """Forward FLOPs (torch's own counter) of one dialogue of ``n_utts`` utterances, divided by
    ``n_utts``; for utterance-level models the same utterances are a batch."""
    dialogue = dummy_dialogue(spec, n_utts, frames)
    batch = (collate_dialogues([dialogue], spec, model.pooling) if model.level == "dialogue"
             else collate_utterances(dialogue.utterances, spec))
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(batch)
    return counter.get_total_flops() / n_utts
