"""Feature extractors turn raw media into per-utterance ``[T, D]`` feature tensors.

An extractor is a registered class with a ``modality``, an output ``dim`` and
``extract(media) -> list[Tensor[T, D]]`` over a list of :class:`RawMedia`. Its ``config()``
(name plus constructor parameters) keys on-disk caches of extracted features, together with
``runtime()`` (the device and precision it computes on). ``item_stats()`` gives per-item
counts of the last ``extract`` call that a result should report (e.g. frames without a face).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from harness.data.types import RawMedia


def config_digest(config: Mapping[str, Any]) -> str:
    """SHA-256 of an extractor's ``config()`` as canonical JSON (sorted keys): what caches key on."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def describe_extractor(config: Mapping[str, Any]) -> str:
    """An extractor config in a few words for tables: ``opensmile IS10_paraling functionals``,
    ``audio-encoder w2v (frames)``, ``standardized(logmel)``, ``projected(hash-embed) -> 100``."""
    name = str(config.get("name", "?"))
    base = config.get("base")
    if isinstance(base, Mapping):
        return f"{name}({describe_extractor(base)})" + (f" -> {config['dim']}" if "dim" in config else "")
    words = [str(config[k]) for k in ("feature_set", "level") if k in config]
    if isinstance(config.get("path"), str):
        words.append(config["path"].rstrip("/").rsplit("/", 1)[-1])
    if "pooling" in config:
        words.append(f"({config['pooling']})")
    return " ".join([name, *words])


def extractor_from_config(config: Mapping[str, Any]) -> Extractor:
    """The extractor whose :meth:`~Extractor.config` is ``config`` (as a dataset card stores it).

    It is built from the options its constructor accepts (a config may name only some); the
    rest of a config records facts, such as a model folder's SHA-256 or a library's version,
    which are checked instead: when the rebuilt extractor's differ (the model files or the
    library changed since the config was written), ``ValueError`` names them.
    """
    from harness.options import accepted_options
    from harness.registry import EXTRACTORS

    if not isinstance(config, Mapping) or not isinstance(config.get("name"), str):
        raise ValueError(f"an extractor config needs a 'name' (a registered extractor), got {config!r}")
    params = {k: v for k, v in config.items() if k != "name"}
    accepted = accepted_options(EXTRACTORS.get(config["name"]).obj)
    facts = {k: v for k, v in params.items() if accepted is not None and k not in accepted}
    extractor = EXTRACTORS.create(config["name"], **{k: v for k, v in params.items() if k not in facts})
    rebuilt = extractor.config()
    changed = sorted(k for k, v in facts.items()
                     if json.dumps(rebuilt.get(k), sort_keys=True, default=str) != json.dumps(v, sort_keys=True, default=str))
    if changed:
        raise ValueError(f"extractor {config['name']!r}: {', '.join(f'{k} is now {rebuilt.get(k)!r}, not {facts[k]!r}' for k in changed)} "
                         f"as recorded; its model files or library changed since, so its features would not match")
    return extractor


def runtime_of(device: torch.device, dtype: torch.dtype | None = None) -> dict[str, str]:
    """:meth:`Extractor.runtime` of code running on ``device`` in ``dtype`` (None: float32);
    a CUDA device is named by its model, since kernels differ between GPUs."""
    name = f"cuda:{torch.cuda.get_device_name(device)}" if device.type == "cuda" else device.type
    return {"device": name, "precision": str(dtype or torch.float32).removeprefix("torch.")}


class Extractor:
    modality: ClassVar[str] = ""
    name: ClassVar[str] = ""

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Name and parameters: everything that changes the output."""
        params = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {"name": self.name, **params}

    def runtime(self) -> dict[str, str]:
        """Where the features are computed: ``{"device": ..., "precision": ...}``. Features can
        differ in their last bits between devices and precisions, so caches key on it too."""
        return {"device": "cpu", "precision": "float32"}

    def item_stats(self) -> list[dict[str, int]]:
        """One dict of counts per item of the last :meth:`extract` call (e.g. ``frames_without_face``),
        or an empty list from an extractor that counts nothing."""
        return []

    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        raise NotImplementedError

    def __call__(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        return self.extract(media)
