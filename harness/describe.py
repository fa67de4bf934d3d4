"""Architecture summary of a model: parameters per block and FLOPs per utterance."""

from __future__ import annotations

from typing import Any

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


def describe_model(model: BenchModel, spec: DataSpec) -> dict[str, Any]:
    blocks = [{"name": name, "type": type(child).__name__, "params": sum(p.numel() for p in child.parameters())}
              for name, child in model.named_children()]
    return {
        "model": type(model).__name__,
        "level": model.level,
        "pooling": model.pooling if model.level == "dialogue" else None,
        "spec": spec.to_dict(),
        "params": model.num_parameters(),
        "trainable_params": model.num_parameters(trainable_only=True),
        "flops_per_utterance": flops_per_utterance(model, spec),
        "blocks": blocks,
    }
