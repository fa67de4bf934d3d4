"""Checks of a sweep config beyond its structure, run before anything is written or trained.

:func:`option_value_lines` checks option values against their plugin's declaration
(:mod:`harness.options`). :func:`input_problems` checks what the config points at: dataset
paths exist and are readable; each dataset opens and tells its spec (layout, widths, classes,
speakers; :func:`harness.datasets.spec_only.read_spec`); each model, preset included, is built
once for each dataset it runs on, on the meta device (no memory, no training), so a preset
whose widths the data lacks or an option its constructor refuses is caught here; corruptions and
defences are built with their options and meet datasets that have their modality (and, for
raw-media ones, that raw media). :func:`describe_validation_error` turns pydantic's errors into
one line each that names the key, the value and what was expected, with the closest valid key
for a misspelt one.

Every problem is one line ``<source>: key '<key>': <what is wrong>``.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from harness.corruption import RAW_FIELD_MODALITY, RawCorruption
from harness.options import accepted_options, option_problems, option_specs
from harness.registry import (
    CORRUPTIONS,
    DATASETS,
    DEFENSES,
    EXTRACTORS,
    MODELS,
    Registry,
    RegistryError,
)

# ------------------------------------------------------------------------------ structure errors


def describe_validation_error(err: ValidationError, source: str, root: type[BaseModel]) -> list[str]:
    """One line per pydantic error of validating a config against ``root`` (the sweep model).

    An unknown key gets the closest valid key and the list of valid keys at its place; a value
    error says ``got`` once.
    """
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: {unknown_key_message(root, loc)}")
            continue
        if e["type"] == "missing":
            lines.append(f"{source}: key '{key}': required, but the config has none{_how_to_add(root, loc)}")
            continue
        msg = re.sub(r"^(Value|Assertion) error, ", "", e["msg"])
        got = "" if re.search(r"\bgot\b", msg) else f" (got {e.get('input')!r})"
        lines.append(f"{source}: key '{key}': {msg}{got}")
    return lines


def unknown_key_message(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """``unknown key 'train.epoch'; did you mean 'train.epochs'? Valid keys in [train]: ...``."""
    section = section_model(root, loc[:-1])
    key = ".".join(str(p) for p in loc)
    prefix = ".".join(str(p) for p in loc[:-1])
    if section is None:
        return f"key '{key}': unknown key"
    valid = sorted(section.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
    hint = f"; did you mean '{prefix + '.' if prefix else ''}{close[0]}'?" if close else ""
    where = f"in {_section_name(loc[:-1])}" if loc[:-1] else "at the top level"
    return f"key '{key}': unknown key{hint} Valid keys {where}: {', '.join(valid)}"


def _how_to_add(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    parent = section_model(root, loc[:-1])
    field = parent.model_fields.get(str(loc[-1])) if parent is not None else None
    if field is None:
        return ""
    if typing.get_origin(field.annotation) is list and inspect.isclass(_table_model(field.annotation)):
        return f" (add a [[{'.'.join(str(p) for p in loc if not isinstance(p, int))}]] table)"
    return ""


def section_model(root: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that validates the table at ``path`` (e.g. ``("models", 0, "train")``)."""
    model: Any = root
    for part in path:
        if isinstance(part, int):
            continue  # an element of a list of tables: the list's item model, found below
        if not (inspect.isclass(model) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = _table_model(model.model_fields[part].annotation)
    return model if inspect.isclass(model) and issubclass(model, BaseModel) else None


def _table_model(annotation: Any) -> Any:
    """The BaseModel inside ``X``, ``X | None`` or ``list[X]``."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _table_model(arg)
            if inspect.isclass(found) and issubclass(found, BaseModel):
                return found
        return None
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        return _table_model(args[0]) if args else None
    return annotation


def _section_name(path: tuple[Any, ...]) -> str:
    names = [str(p) for p in path if not isinstance(p, int)]
    return f"[[{'.'.join(names)}]]" if path and isinstance(path[-1], int) else f"[{'.'.join(names)}]"


# ------------------------------------------------------------------------------ option values


def option_value_lines(registry: Registry[Any], name: str, options: dict[str, Any], key: str, source: str,
                       n_positional: int | None = None) -> list[str]:
    """One line per option of ``options`` whose value plugin ``name`` refuses by its declaration
    (type, choices, range), naming the key (``<key>.<option>``), the value and what it must be,
    with the closest allowed value for a misspelt one."""
    entry = registry.get(name)
    specs = {s.name: s for s in option_specs(entry, n_positional)}
    out = []
    for option, why in option_problems(entry, options, n_positional).items():
        value = options[option]
        close = difflib.get_close_matches(str(value), [str(a) for a in specs[option].allowed or ()], n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        out.append(f"{source}: key '{key}.{option}': {registry.kind} {name!r} does not allow {value!r}: "
                   f"{why}{hint}")
    return out


# ------------------------------------------------------------------------------ what the config points at

MODEL_BUILD_ERRORS = (ValueError, TypeError, RegistryError)
"""What a model's constructor raises for options or data it refuses (anything else, e.g. an op
the meta device lacks, is retried on the CPU)."""


def input_problems(cfg: Any, source: str, model_sets: dict[str, list[tuple[str, str, dict[str, Any]]]]) -> list[str]:
    """Problems of the datasets, models, corruptions and media that ``cfg`` (a validated
    ``SweepConfig`` whose names and option values are known good) names, one line each; empty
    when it can run. ``model_sets``: the named model sets (``harness.run.config.model_sets``)."""
    problems: list[str] = []
    specs: dict[int, Any] = {}
    for i, d in enumerate(cfg.datasets):
        found = _dataset_problems(d, d.key(i), source)
        if not found:
            spec, why = _read_spec(d, d.key(i), source)
            if why is None:
                specs[i] = spec
            else:
                found.append(why)
        problems += found
    problems += _model_problems(cfg, specs, source, model_sets)
    raw_users: list[tuple[str, str, dict[str, Any], Registry[Any]]] = []
    for key, name, options, registry in corruption_entries(cfg):
        found = _build_problems(registry, name, options, key, source)
        if not found and isinstance(options.get("extractor"), dict):
            found = _extractor_problems(options["extractor"], f"{key}.options.extractor", source)
        if not found:
            found = _modality_problems(cfg, specs, registry, name, options, key, source)
        problems += found
        if not found and issubclass(registry.get(name).obj, RawCorruption):
            raw_users.append((key, name, options, registry))
    if not problems:
        for i, d in enumerate(cfg.datasets):
            for key, name, options, registry in raw_users:
                why = raw_media_problem(d.name, d.options, registry.get(name).obj, name, options, registry.kind)
                if why:
                    problems.append(f"{source}: key '{key}': {why} ({d.key(i)})")
    return problems


def corruption_entries(cfg: Any) -> list[tuple[str, str, dict[str, Any], Registry[Any]]]:
    """``(key, name, options, registry)`` of every corruption, training mix and defence of ``cfg``."""
    entries = [(f"corruptions.{i}", c.name, c.options, CORRUPTIONS) for i, c in enumerate(cfg.corruptions)]
    entries += [(f"defenses.{i}", d.name, d.options, DEFENSES) for i, d in enumerate(cfg.defenses)]
    entries += [(f"train_conditions.{i}.mix.{j}", mix.name, mix.options, CORRUPTIONS)
                for i, tc in enumerate(cfg.train_conditions) for j, mix in enumerate(tc.mix)]
    return entries


def _dataset_problems(entry: Any, key: str, source: str) -> list[str]:
    problems: list[str] = []
    path = entry.options.get("path")
    if isinstance(path, str):
        why = path_problem(path)
        if why:
            problems.append(f"{source}: key '{key}.options.path': {why}")
    problems += _dataset_extractor_problems(entry, key, source)
    return problems


def _dataset_extractor_problems(entry: Any, key: str, source: str) -> list[str]:
    """A raw-media dataset names an extractor per modality (``audio = "logmel"``) with its
    options (``audio_options``): both are checked as the extractor's own would be."""
    params = accepted_options(DATASETS.get(entry.name).obj) or {}
    effective = {n: p.default for n, p in params.items()} | dict(entry.options)
    problems = []
    for m in RAW_FIELD_MODALITY.values():
        name, options_key = effective.get(m), f"{m}_options"
        if not isinstance(name, str) or name in ("", "none") or options_key not in params:
            continue
        options = effective.get(options_key) or {}
        problems += _extractor_problems({"name": name, **options}, f"{key}.options.{m}", source,
                                        f"{key}.options.{options_key}")
    return problems


def _extractor_problems(config: dict[str, Any], key: str, source: str, options_key: str | None = None) -> list[str]:
    """Problems of an extractor config ``{"name": ..., **options}`` named at ``key`` (its options
    at ``options_key``, by default beside the name)."""
    name, options = config.get("name"), {k: v for k, v in config.items() if k != "name"}
    if not isinstance(name, str):
        return [f"{source}: key '{key}': an extractor config needs a 'name' (a registered extractor), got {config!r}"]
    try:
        EXTRACTORS.resolve(name, options, check_values=False)
    except RegistryError as exc:
        return [f"{source}: key '{key}': {exc}"]
    return option_value_lines(EXTRACTORS, name, options, options_key or key, source)


def _read_spec(entry: Any, key: str, source: str) -> tuple[Any, str | None]:
    """``(spec, None)`` of a dataset entry, or ``(None, why)`` when it cannot be opened: the
    loader's own error (a file of the wrong layout, widths that disagree) as one line."""
    from harness.datasets.spec_only import read_spec
    from harness.errors import DataError

    try:
        return read_spec(entry.name, entry.options), None
    except Exception as exc:  # noqa: BLE001 - whatever stops the loader stops the sweep: say so, once
        where = f"{key}.options.path" if isinstance(exc, (DataError, OSError)) and "path" in entry.options else key
        what = str(exc) if isinstance(exc, (ValueError, OSError, RegistryError)) else f"{type(exc).__name__}: {exc}"
        return None, f"{source}: key '{where}': dataset {entry.name!r} cannot be read: {what}"


def _model_problems(cfg: Any, specs: dict[int, Any], source: str,
                    model_sets: dict[str, list[tuple[str, str, dict[str, Any]]]]) -> list[str]:
    """Each model entry (each variant of a set) built once for each dataset it runs on."""
    problems: list[str] = []
    for i, m in enumerate(cfg.models):
        if m.name is not None:
            variants = [(m.label or m.name, m.name, m.model_options())]
        else:
            variants = [(label, name, {**options, **m.options}) for label, name, options in model_sets[m.set]]
        for j, d in enumerate(cfg.datasets):
            if j not in specs or (m.datasets is not None and not d.answers_to(m.datasets)):
                continue
            for label, name, options in variants:
                why = model_build_problem(name, specs[j], options)
                if why is not None:
                    key = f"models.{i}.preset" if why[0] == "preset" else f"models.{i}"
                    problems.append(f"{source}: key '{key}': model {label!r} on dataset {d.shown!r}"
                                    f"{_path_words(d)}: {why[1]}")
                    break  # one line per entry and dataset: the other variants share the cause
    return problems


def model_build_problem(name: str, spec: Any, options: dict[str, Any]) -> tuple[str, str] | None:
    """``(kind, why)`` when model ``name`` cannot be built for ``spec`` with ``options`` (a preset
    whose widths or task the data lacks, an option its constructor refuses); ``None`` when it
    can. Built on the meta device: sizes only, no memory, no initialisation."""
    import torch

    from harness.errors import PresetError

    try:
        try:
            with torch.device("meta"):
                MODELS.create(name, spec, **options)
        except MODEL_BUILD_ERRORS:
            raise
        except Exception:  # noqa: BLE001 - an op the meta device lacks: build it for real
            MODELS.create(name, spec, **options)
    except PresetError as exc:
        return "preset", str(exc)
    except MODEL_BUILD_ERRORS as exc:
        return "options", str(exc)
    return None


def _path_words(entry: Any) -> str:
    path = entry.options.get("path")
    return f" ({path})" if isinstance(path, str) else ""


def _modality_problems(cfg: Any, specs: dict[int, Any], registry: Registry[Any], name: str,
                       options: dict[str, Any], key: str, source: str) -> list[str]:
    """A corruption or defence whose modality a dataset lacks (``feature-missing`` on video of
    an audio-and-text dataset) is refused, naming both."""
    default = {s.name: s.default for s in option_specs(registry.get(name))}.get("modality")
    modality = options.get("modality", default)
    out = []
    for j, d in enumerate(cfg.datasets):
        spec = specs.get(j)
        if spec is not None and isinstance(modality, str) and modality not in spec.dims:
            out.append(f"{source}: key '{key}.options.modality': {registry.kind} {name!r} acts on {modality!r}, but "
                       f"dataset {d.shown!r}{_path_words(d)} has no {modality} (its modalities: "
                       f"{', '.join(spec.dims)}) ({d.key(j)})")
    return out


def path_problem(path: str) -> str | None:
    """Why dataset ``path`` cannot be read (``None`` when it can): it must exist, and a file
    must be readable, a folder listable."""
    p = Path(path)
    cwd = f"relative paths resolve against the directory mcer-bench runs in, {os.getcwd()}"
    if not p.exists():
        return f"{path!r} does not exist ({cwd})" if not p.is_absolute() else f"{path!r} does not exist"
    if p.is_dir():
        if not os.access(p, os.R_OK | os.X_OK):
            return f"folder {path!r} is not readable (permission denied)"
        return None
    try:
        with open(p, "rb") as f:
            f.read(1)
    except OSError as exc:
        return f"file {path!r} is not readable ({exc.strerror or exc})"
    return None


def _build_problems(registry: Registry[Any], name: str, options: dict[str, Any], key: str, source: str) -> list[str]:
    """Build the corruption or defence once: its constructor checks the rest of its options."""
    try:
        registry.create(name, **options)
    except (ValueError, TypeError, RegistryError, OSError) as exc:
        return [f"{source}: key '{key}.options': {registry.kind} {name!r} refuses its options: {exc}"]
    return []


def raw_media_problem(dataset: str, dataset_options: dict[str, Any], corruption: type, name: str,
                      options: dict[str, Any], kind: str = "corruption") -> str | None:
    """Why raw-media ``corruption`` cannot run on ``dataset`` loaded with ``dataset_options``
    (``None`` when it can, or when the dataset does not say what it holds).

    A dataset that holds raw media says so with the registry metadata ``raw_media=True``;
    its ``keep_raw`` option (when it has one) must then be true, and the option naming the
    modality's extractor (``audio=``, ``video=``, ``text=`` of the raw loaders) must not be
    ``None``.
    """
    entry = DATASETS.get(dataset)
    path = dataset_options.get("path")
    dataset_label = f"{dataset!r} ({path})" if isinstance(path, str) else repr(dataset)
    field = getattr(corruption, "raw_field", "")
    modality = options.get("modality") or RAW_FIELD_MODALITY.get(field, "?")
    what = {"waveform": "raw waveforms (audio)", "frames": "raw video frames",
            "transcript": "transcripts"}.get(field, f"raw {field}")
    if not entry.metadata.get("raw_media"):
        raw_layouts = ", ".join(n for n in DATASETS.names() if DATASETS.get(n).metadata.get("raw_media"))
        return (f"{kind} {name!r} corrupts {what}, but dataset {dataset_label} holds features only (no raw media); "
                f"use a feature-level corruption (feature-*) on {modality!r}, or a raw layout ({raw_layouts}) "
                f"with keep_raw = true")
    params = accepted_options(entry.obj) or {}
    effective = {n: p.default for n, p in params.items()} | dict(dataset_options)
    if "keep_raw" in params and not effective.get("keep_raw"):
        return (f"{kind} {name!r} corrupts {what}, but dataset {dataset_label} is loaded without its raw media "
                f"(keep_raw = false); set keep_raw = true in its options")
    if modality in params and effective.get(modality) in (None, "none"):
        return (f"{kind} {name!r} corrupts {what}, but dataset {dataset_label} is loaded without {modality} "
                f"({modality} = none); name a {modality} extractor in its options (mcer-bench list extractors)")
    return None
