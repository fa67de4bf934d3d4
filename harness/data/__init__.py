"""The data model (see docs/DESIGN.md): specs, utterances, dialogues, datasets and batching."""

from harness.data.collate import (
    IGNORE_INDEX,
    POOLINGS,
    Batch,
    DialogueBatch,
    UtteranceBatch,
    collate_dialogues,
    collate_utterances,
    flat_output,
    flat_targets,
    flat_uids,
    pool,
)
from harness.data.types import SPLITS, BenchDataset, DataSpec, Dialogue, RawMedia, Utterance

__all__ = [
    "IGNORE_INDEX", "POOLINGS", "SPLITS", "Batch", "BenchDataset", "DataSpec", "Dialogue", "DialogueBatch",
    "RawMedia", "Utterance", "UtteranceBatch", "collate_dialogues", "collate_utterances", "flat_output",
    "flat_targets", "flat_uids", "pool",
]
