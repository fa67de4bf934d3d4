"""Presets: a model's reference configuration as plain option values, with its provenance.

A preset says "this is the architecture and training recipe that the authors released", so a
number reported for ``MODELS.create("tfn", spec, preset="mosi")`` is a number for their method.
A preset is only data (timm's default configs beside the model): constructor options, the input
dims the reference configuration uses, the training recipe, and the reference it reproduces,
with that reference's parameter counts so tests and ``mcer-bench describe`` can show parity.

Models register their presets as registry metadata::

    @MODELS.register("tfn", level="utterance", presets={"mosi": Preset(...)})

and :meth:`harness.registry.Registry.create` applies ``preset=NAME``: the preset's options first,
explicit options over them, after checking the spec against the preset's dims and task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from harness.errors import PresetError

if TYPE_CHECKING:
    from harness.data.types import DataSpec

__all__ = ["Preset", "PresetError", "Reference", "block_params", "presets_of", "resolve_preset"]


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Reference:
    """The released implementation a preset reproduces.

    ``params`` counts the parameters the reference uses in its forward pass at this
    configuration; ``created_params`` what it creates when that differs (unused modules are
    not reproduced). ``blocks`` maps the reference's own module names to their counts.
    """

    repo: str
    path: str
    commit: str
    config: str = ""
    params: int | None = None
    created_params: int | None = None
    blocks: Mapping[str, int] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", _frozen(self.blocks))

    @property
    def url(self) -> str:
        return f"https://github.com/{self.repo}/blob/{self.commit}/{self.path}"

    def to_dict(self) -> dict[str, Any]:
        return {"repo": self.repo, "path": self.path, "commit": self.commit, "config": self.config,
                "url": self.url, "params": self.params, "created_params": self.created_params,
                "blocks": dict(self.blocks), "notes": self.notes}


@dataclass(frozen=True)
class Preset:
    """A reference configuration of one model: option values, input dims, task, recipe.

    ``recipe`` holds :class:`harness.train.TrainConfig` fields (optimiser, learning rate and
    schedule, weight decay, epochs, batch size, gradient clipping, class weights): a sweep that
    names the preset trains that way unless its config overrides a field. ``blocks`` maps a
    reference block name to the dotted names of this model's submodules whose parameters add
    up to it; a block not listed maps to the submodule of the same name.
    """

    options: Mapping[str, Any]
    dims: Mapping[str, int]
    task: str
    reference: Reference
    recipe: Mapping[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    num_speakers: int | None = None
    blocks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        if self.task not in ("classification", "regression"):
            raise ValueError(f"Preset.task must be 'classification' or 'regression', got {self.task!r}")
        if self.task == "classification" and not self.num_classes:
            raise ValueError("a classification Preset needs num_classes (the reference's class count)")
        if "preset" in self.options:
            raise ValueError("Preset.options must not contain 'preset'")
        object.__setattr__(self, "options", _frozen(self.options))
        object.__setattr__(self, "dims", _frozen({str(k): int(v) for k, v in self.dims.items()}))
        object.__setattr__(self, "recipe", _frozen(self.recipe))
        object.__setattr__(self, "blocks", _frozen({k: tuple(v) for k, v in self.blocks.items()}))

    def spec(self) -> DataSpec:
        """The :class:`DataSpec` of the reference configuration (dims, task, classes, speakers)."""
        from harness.data.types import DataSpec

        return DataSpec(dims=dict(self.dims), task=self.task,  # type: ignore[arg-type]
                        num_classes=self.num_classes if self.task == "classification" else None,
                        num_speakers=self.num_speakers or 1)

    def check_spec(self, spec: DataSpec, what: str) -> None:
        """Raise :class:`PresetError` naming both sides when ``spec`` does not fit this preset."""
        if dict(spec.dims) != dict(self.dims):
            raise PresetError(f"{what} expects input dims {dict(self.dims)} (the reference configuration), "
                              f"but the data has {dict(spec.dims)}; use a dataset with those dims, or no preset")
        if spec.task != self.task:
            raise PresetError(f"{what} is a {self.task} configuration, but the data's task is {spec.task!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``describe --json``, docs)."""
        return {"options": _plain(self.options), "dims": dict(self.dims), "task": self.task,
                "num_classes": self.num_classes, "num_speakers": self.num_speakers,
                "recipe": _plain(self.recipe), "reference": self.reference.to_dict(), "notes": self.notes}


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in mapping.items()}


def presets_of(entry: Any) -> Mapping[str, Preset]:
    """The presets a registry entry declares (empty when it has none)."""
    return entry.metadata.get("presets") or {}


def resolve_preset(entry: Any, options: Mapping[str, Any], what: str) -> tuple[Preset | None, dict[str, Any]]:
    """Split ``preset=NAME`` out of ``options``: ``(preset or None, options to pass)``.

    The preset's options come first and explicit options override them. An entry without
    presets leaves ``options`` as they are (a ``preset`` key is then an unknown option).
    """
    presets = presets_of(entry)
    options = dict(options)
    if not presets or "preset" not in options:
        return None, options
    name = options.pop("preset")
    if name is None:
        return None, options
    if name not in presets:
        raise PresetError(f"{what} has no preset {name!r}; its presets: {', '.join(sorted(presets))}")
    preset = presets[name]
    return preset, {**preset.options, **options}


def block_params(model: Any, preset: Preset) -> dict[str, int]:
    """Parameters of ``model`` per reference block of ``preset`` (see :attr:`Preset.blocks`)."""
    modules = dict(model.named_modules())
    out = {}
    for block in preset.reference.blocks:
        names = preset.blocks.get(block, (block,))
        missing = [n for n in names if n not in modules]
        if missing:
            raise KeyError(f"preset block {block!r} maps to submodule(s) {missing} that "
                           f"{type(model).__name__} does not have")
        out[block] = sum(p.numel() for n in names for p in modules[n].parameters())
    return out


