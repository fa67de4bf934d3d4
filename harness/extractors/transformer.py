"""Transformer text encoder loaded from a local directory (never a hub download).

``transformer`` runs ``AutoTokenizer`` / ``AutoModel.from_pretrained(path, local_files_only=True)``
and returns, per transcript, the hidden states of its real tokens ``[T, H]`` (special tokens
included, padding removed; ``H`` = the model's ``hidden_size``, read from its config).
``config()`` carries a SHA-256 of the model directory's files, so caches follow the weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import torch

from harness.data.types import RawMedia
from harness.extractors.base import Extractor, runtime_of
from harness.options import DataPath, PositiveInt, Range
from harness.registry import EXTRACTORS
from harness.runtime import machine_independent_threads, select_device


def directory_sha256(path: Path) -> str:
    """SHA-256 over the relative names and contents of every file under ``path`` (sorted)."""
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(path)).encode() + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


@EXTRACTORS.register("transformer", modality="text")
class TransformerText(Extractor):
    """Token hidden states of a local Hugging Face encoder (BERT, RoBERTa, ...)."""

    modality = "text"
    name = "transformer"

    def __init__(self, path: DataPath, layer: int = -1, max_length: Annotated[int, Range(2)] = 128,
                 batch_size: PositiveInt = 16, device: str = "auto") -> None:
        """``batch_size`` is accepted for configurations written before transcripts were encoded
        one at a time (see :meth:`extract`); it is checked and kept, and no longer batches."""
        p = Path(path)
        if not p.is_dir() or not (p / "config.json").is_file():
            raise ValueError(f"transformer: path {str(path)!r} must be a local model directory containing config.json "
                             f"(hub names are not downloaded)")
        from transformers import AutoModel, AutoTokenizer

        self.path = str(p.resolve())
        self.layer = int(layer)
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self._device = select_device(device)
        self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self._model = AutoModel.from_pretrained(self.path, local_files_only=True).eval().to(self._device)
        n_layers = int(self._model.config.num_hidden_layers)
        if not -(n_layers + 1) <= self.layer <= n_layers:
            raise ValueError(f"transformer: layer {layer} out of range for a model with {n_layers} layers")
        self._hash: str | None = None

    @property
    def dim(self) -> int:
        return int(self._model.config.hidden_size)

    def config(self) -> dict[str, Any]:
        if self._hash is None:
            self._hash = directory_sha256(Path(self.path))
        return {"name": self.name, "path": self.path, "model_sha256": self._hash, "layer": self.layer,
                "max_length": self.max_length}

    def runtime(self) -> dict[str, str]:
        return runtime_of(self._device)

    @torch.inference_mode()
    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        texts = []
        for i, m in enumerate(media):
            if m.transcript is None:
                raise ValueError(f"transformer: item {i} has no transcript")
            texts.append(m.transcript)
        # One transcript per forward pass (and one CPU thread): a transcript's features then do
        # not depend on the padding of a batch, on how many rows its products had (which picks
        # the BLAS kernel), or on the machine's thread count. So a text corruption's re-extracted
        # features are paired across batches and machines.
        out: list[torch.Tensor] = []
        with machine_independent_threads(self._device):
            for text in texts:
                enc = self._tokenizer([text], truncation=True, max_length=self.max_length,
                                      return_tensors="pt").to(self._device)
                res = self._model(**enc, output_hidden_states=self.layer != -1)
                hidden = res.last_hidden_state if self.layer == -1 else res.hidden_states[self.layer]
                out.append(hidden[0].float().cpu().contiguous())
        return out
