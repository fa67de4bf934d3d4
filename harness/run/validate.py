"""Checks of a sweep config beyond its structure, run before anything is written or trained.

:func:`input_problems` checks what the config points at: dataset paths exist and are
readable, every option value is one its plugin allows (:mod:`harness.options`), corruptions
and defences can be built with their options, and each raw-media corruption meets a dataset
that has that raw media. :func:`describe_validation_error` turns pydantic's errors into one
line each that names the key, the value and what was expected, with the closest valid key for
a misspelt one.

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

from harness.corruption import RawCorruption
from harness.options import RAW_FIELD_MODALITY, option_specs, value_problem
from harness.registry import CORRUPTIONS, DATASETS, DEFENSES, MODELS, Registry, RegistryError, accepted_options

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


# ------------------------------------------------------------------------------ what the config points at


def input_problems(cfg: Any, source: str) -> list[str]:
    """Problems of the datasets, options and media that ``cfg`` (a validated ``SweepConfig``)
    names, one line each; empty when it can run."""
    problems: list[str] = []
    for i, d in enumerate(cfg.datasets):
        problems += _dataset_problems(d, f"datasets.{i}", source)
    for i, m in enumerate(cfg.models):
        if m.name is not None:
            _, _, effective = MODELS.resolve(m.name, m.model_options(), n_positional=1)
            problems += _value_problems(MODELS, m.name, effective, f"models.{i}", source)
    raw_users: list[tuple[str, str, dict[str, Any], Registry[Any]]] = []
    entries = [(f"corruptions.{i}", c.name, c.options, CORRUPTIONS) for i, c in enumerate(cfg.corruptions)]
    entries += [(f"defenses.{i}", d.name, d.options, DEFENSES) for i, d in enumerate(cfg.defenses)]
    entries += [(f"train_conditions.{i}.mix.{j}", mix.name, mix.options, CORRUPTIONS)
                for i, tc in enumerate(cfg.train_conditions) for j, mix in enumerate(tc.mix)]
    for key, name, options, registry in entries:
        found = _value_problems(registry, name, options, key, source)
        if not found:
            found = _build_problems(registry, name, options, key, source)
        problems += found
        if not found and issubclass(registry.get(name).obj, RawCorruption):
            raw_users.append((key, name, options, registry))
    if not problems:
        for i, d in enumerate(cfg.datasets):
            for key, name, options, registry in raw_users:
                why = raw_media_problem(d.name, d.options, registry.get(name).obj, name, options, registry.kind)
                if why:
                    problems.append(f"{source}: key '{key}': {why} (datasets.{i})")
    return problems


def _dataset_problems(entry: Any, key: str, source: str) -> list[str]:
    problems = _value_problems(DATASETS, entry.name, entry.options, key, source)
    path = entry.options.get("path")
    if isinstance(path, str):
        why = path_problem(path)
        if why:
            problems.append(f"{source}: key '{key}.options.path': {why}")
    return problems


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


def _value_problems(registry: Registry[Any], name: str, options: dict[str, Any], key: str, source: str) -> list[str]:
    """An option value outside the plugin's allowed values (:func:`harness.options.option_specs`)."""
    out = []
    specs = {s.name: s for s in option_specs(registry.get(name))}
    for option, value in options.items():
        spec = specs.get(option)
        why = value_problem(spec, value) if spec is not None else None
        if why:
            close = difflib.get_close_matches(str(value), [str(a) for a in spec.allowed or ()], n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(f"{source}: key '{key}.options.{option}': {registry.kind} {name!r} does not allow "
                       f"{value!r}: {why}{hint}")
    return out


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
