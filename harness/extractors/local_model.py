"""What the audio and vision encoders share: a Hugging Face model loaded from a local folder.

:class:`LocalEncoder` checks the folder before anything loads (a folder, not a hub name; a
``config.json`` naming a model type the encoder supports; weights; the preprocessor's
settings), loads it through transformers' auto classes with ``local_files_only=True``, picks
the hidden state (one layer, or the fixed mean of several) and runs it on the chosen device
and precision. Its ``config()`` carries the SHA-256 of the folder's files
(:func:`~harness.extractors.transformer.directory_sha256`), so cached features follow the
weights; ``runtime()`` names the device and precision, which key caches separately.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from harness.extractors.base import Extractor, runtime_of
from harness.extractors.transformer import directory_sha256
from harness.runtime import amp_dtype, select_device

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
"""File names under which ``save_pretrained`` writes weights (whole or sharded)."""

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
Precision = Literal["auto", "float32", "bfloat16", "float16"]
Pooling = Literal["frames", "mean"]


def checked_model_dir(path: str, who: str, model_types: Mapping[str, str], what: str) -> tuple[Path, str]:
    """``(resolved folder, model_type)`` of a local model folder, or one clear ``ValueError``.

    The folder must exist (a hub name is never downloaded), hold a ``config.json`` whose
    ``model_type`` is a key of ``model_types`` (``what`` says what kind of model is wanted),
    weights under one of :data:`WEIGHT_FILES`, and ``preprocessor_config.json`` (the
    feature extractor's or image processor's settings: sampling rate, size, normalisation).
    """
    p = Path(str(path))
    if not p.is_dir():
        raise ValueError(f"{who}: path {str(path)!r} is not a local model folder; hub names such as "
                         f"'facebook/wav2vec2-base' are never downloaded: fetch the model once with the hub's own "
                         f"tools and pass its folder (config.json, weights, preprocessor_config.json)")
    config = p / "config.json"
    if not config.is_file():
        raise ValueError(f"{who}: model folder {str(p)!r} has no config.json (save the model with save_pretrained)")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(f"{who}: {config} is not a readable JSON object ({exc})") from None
    if model_type not in model_types:
        raise ValueError(f"{who}: model folder {str(p)!r} holds a {model_type!r} model, which is not {what}; "
                         f"supported model types: {', '.join(f'{k} ({v})' for k, v in model_types.items())}")
    if not any((p / w).is_file() for w in WEIGHT_FILES):
        raise ValueError(f"{who}: model folder {str(p)!r} has no weights (none of {', '.join(WEIGHT_FILES)}); "
                         f"save the model with save_pretrained")
    if not (p / "preprocessor_config.json").is_file():
        raise ValueError(f"{who}: model folder {str(p)!r} has no preprocessor_config.json (the feature extractor's "
                         f"or image processor's settings); save it beside the model with save_pretrained")
    return p.resolve(), str(model_type)


def check_layers(layer: int | None, layers: Sequence[int] | None, n_states: int, who: str) -> None:
    """``layer`` (one hidden state) and ``layers`` (a fixed mean of several) exclude each other;
    every index must name one of the ``n_states`` hidden states (negative counts from the end)."""
    if layer is not None and layers is not None:
        raise ValueError(f"{who}: give layer (one hidden state) or layers (their mean), not both; got layer={layer!r}, "
                         f"layers={list(layers)!r}")
    if layers is not None and (isinstance(layers, (str, bytes)) or len(layers) == 0):
        raise ValueError(f"{who}: layers must be a non-empty list of hidden-state indices, got {layers!r}")
    for i in ([layer] if layer is not None else list(layers or [])):
        if isinstance(i, bool) or not isinstance(i, int) or not -n_states <= i < n_states:
            raise ValueError(f"{who}: layer {i!r} does not name a hidden state: this model has {n_states} "
                             f"(0 = the input embeddings, {n_states - 1} = the last layer; negative counts from the end)")


def select_hidden(output: Any, layer: int | None, layers: Sequence[int] | None) -> torch.Tensor:
    """The features a model ``output`` (run with ``output_hidden_states=True``) gives, in float32:
    its ``last_hidden_state`` (the model's own output, final norm included) when ``layer`` and
    ``layers`` are None; ``hidden_states[layer]``; or the equal-weight mean of ``hidden_states[i]``
    over ``layers``."""
    if layers is not None:
        return torch.stack([output.hidden_states[i].float() for i in layers]).mean(dim=0)
    if layer is None:
        return output.last_hidden_state.float()
    return output.hidden_states[layer].float()


class LocalEncoder(Extractor):
    """A transformers encoder loaded from a local folder (see the module docstring).

    Subclasses set :attr:`MODEL_TYPES` (``model_type -> name``) and :attr:`WHAT` (the kind of
    model, for errors), call :meth:`_setup` from their constructor and implement ``extract``.
    """

    MODEL_TYPES: ClassVar[dict[str, str]] = {}
    WHAT: ClassVar[str] = ""

    def _setup(self, path: str, layer: int | None, layers: Sequence[int] | None, pooling: str, device: str,
               precision: str) -> None:
        who = self.name
        if pooling not in ("frames", "mean"):
            raise ValueError(f"{who}: pooling must be 'frames' or 'mean', got {pooling!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"{who}: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        folder, model_type = checked_model_dir(path, who, self.MODEL_TYPES, self.WHAT)
        self.path = str(folder)
        self.model_type = model_type
        self._device = select_device(device)
        self._dtype = (amp_dtype(self._device) if precision == "auto" else getattr(torch, precision))
        if self._dtype == torch.float32:
            self._dtype = None
        self._hash: str | None = None
        from transformers import AutoModel

        self._model = AutoModel.from_pretrained(self.path, local_files_only=True).eval().to(self._device)
        check_layers(layer, layers, self._n_hidden_states(), who)
        self.layer = None if layer is None else int(layer)
        self.layers = None if layers is None else [int(i) for i in layers]
        self.pooling = pooling

    def _n_hidden_states(self) -> int:
        """Hidden states the encoder returns: the input embeddings plus one per layer."""
        return int(self._model.config.num_hidden_layers) + 1

    def config(self) -> dict[str, Any]:
        """Name, options and the SHA-256 of the model folder (device and precision are in :meth:`runtime`)."""
        if self._hash is None:
            self._hash = directory_sha256(Path(self.path))
        params = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {"name": self.name, "model_sha256": self._hash, **params}

    def runtime(self) -> dict[str, str]:
        return runtime_of(self._device, self._dtype)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self._dtype is None:
            yield
            return
        with torch.autocast(device_type=self._device.type, dtype=self._dtype):
            yield

    def _hidden(self, output: Any) -> torch.Tensor:
        return select_hidden(output, self.layer, self.layers)
