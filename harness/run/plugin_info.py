"""What ``mcer-bench list`` and ``mcer-bench describe`` print about registered plugins.

Everything here reads the registries (names, docstrings, signatures, metadata and presets)
and builds at most one model: no dataset is loaded unless ``--dataset`` names one, and FLOPs
are counted only on request, so ``describe`` answers in about the time it takes to import
the plugins.
"""

from __future__ import annotations

import inspect
import shutil
import textwrap
from typing import Any

from harness.docstrings import plain
from harness.options import option_specs
from harness.presets import Preset, block_params, presets_of
from harness.registry import ALL_REGISTRIES, MODELS, Entry, RegistryError, options_preset_name

# ------------------------------------------------------------------------------ list

def list_text(data: dict[str, list[dict[str, Any]]], width: int | None = None) -> str:
    """The ``mcer-bench list`` table: each name with its whole first sentence, wrapped."""
    width = width or shutil.get_terminal_size((100, 20)).columns
    name_width = max([len(e["name"]) for entries in data.values() for e in entries] + [10]) + 2
    lines = []
    for kind, entries in data.items():
        lines.append(f"{kind} ({len(entries)}):")
        for e in entries:
            body = textwrap.wrap(e["summary"] or "(no description)", max(30, width - name_width - 2)) or [""]
            lines.append(f"  {e['name']:<{name_width}}{body[0]}")
            lines += [f"  {'':<{name_width}}{more}" for more in body[1:]]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ describe

def find_entry(name: str, kind: str | None = None) -> Entry[Any]:
    """The plugin called ``name``: a model first, then any other kind (or only ``kind``)."""
    registries = [ALL_REGISTRIES[kind]] if kind else list(ALL_REGISTRIES.values())
    for registry in registries:
        if name in registry:
            return registry.get(name)
    return registries[0].get(name)  # raises, with close matches among models (or ``kind``)


def plugin_info(entry: Entry[Any]) -> dict[str, Any]:
    """Name, kind, class, summary, options (type, default, allowed values, range) and metadata."""
    obj = entry.obj
    doc = inspect.getdoc(obj) or ""
    info: dict[str, Any] = {
        "name": entry.name, "kind": entry.kind, "summary": entry.summary,
        "object": f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}",
        "description": plain(doc),
        "options": [s.to_dict() for s in option_specs(entry)],
        "metadata": {k: v for k, v in entry.describe()["metadata"].items() if k not in ("presets", "model_sets")},
    }
    if entry.kind == "model":
        info["level"] = getattr(obj, "level", None)
        info["presets"] = sorted(presets_of(entry))
        info["model_sets"] = {k: [label for label, _ in v] for k, v in (entry.metadata.get("model_sets") or {}).items()}
    table = getattr(obj, "table", None)
    if entry.kind in ("corruption", "defense") and table is not None:
        info["severity_table"] = table.to_dict()
        info["level"] = getattr(obj, "level", None)
    return info


def model_info(name: str, spec: Any, options: dict[str, Any], flops: bool = False) -> dict[str, Any]:
    """Parameters (total, trainable, per block) of model ``name`` built for ``spec``; FLOPs per
    utterance when ``flops`` (torch's flop counter over a 10-utterance dialogue)."""
    model = MODELS.create(name, spec, **options)
    info = {"model": type(model).__name__, "level": model.level,
            "pooling": model.pooling if model.level == "dialogue" else None, "spec": spec.to_dict(),
            "params": model.num_parameters(), "trainable_params": model.num_parameters(trainable_only=True),
            "flops_per_utterance": None, "blocks": _blocks(model)}
    if flops:
        from harness.describe import flops_per_utterance

        info["flops_per_utterance"] = flops_per_utterance(model, spec)
    return info


def _blocks(model: Any) -> list[dict[str, Any]]:
    return [{"name": n, "type": type(c).__name__, "params": sum(p.numel() for p in c.parameters())}
            for n, c in model.named_children()]


def preset_info(name: str, preset_name: str) -> dict[str, Any]:
    """The reference configuration ``preset_name`` of model ``name``: the model built at the
    preset's own data spec, its parameter count (total and per block) against the reference's,
    the reference (repository, file, commit), the recipe and the notes."""
    entry = MODELS.get(name)
    presets = presets_of(entry)
    if not presets:
        raise RegistryError(f"model {name!r} declares no presets")
    if preset_name not in presets:
        raise RegistryError(f"model {name!r} has no preset {preset_name!r}; its presets: {', '.join(sorted(presets))}")
    preset: Preset = presets[preset_name]
    spec = preset.spec()
    model = MODELS.create(name, spec, preset=preset_name)
    params = model.num_parameters()
    ref = preset.reference
    blocks = _blocks(model)
    reference_blocks = []
    if ref.blocks:
        ours = block_params(model, preset)
        reference_blocks = [{"name": b, "params": ours[b], "reference": n, "equal": ours[b] == n}
                            for b, n in ref.blocks.items()]
    return {
        "name": name, "preset": options_preset_name(entry, preset), "spec": spec.to_dict(),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in preset.options.items()},
        "recipe": preset.to_dict()["recipe"],
        "reference": ref.to_dict(),
        "params": params,
        "reference_params": ref.params,
        "params_equal": None if ref.params is None else params == ref.params,
        "blocks": blocks,
        "reference_blocks": reference_blocks,
        "notes": preset.notes,
    }


def options_text(options: list[dict[str, Any]], width: int) -> list[str]:
    """One entry per option: name, type, default, allowed values and range, wrapped to ``width``."""
    if not options:
        return ["  (no options)"]
    w = max(len(o["name"]) for o in options)
    out = []
    for o in options:
        text = f"{o['type']}, " + ("required" if o["required"] else f"default {o['default']!r}")
        if o["allowed"] is not None:
            text += "; one of " + ", ".join(repr(a) for a in o["allowed"])
        if o.get("range"):
            text += f"; in {o['range']}"
        out += textwrap.wrap(text, max(40, width), initial_indent=f"  {o['name']:<{w}}  ",
                             subsequent_indent=" " * (w + 6))
    return out


def describe_text(info: dict[str, Any], width: int | None = None) -> str:
    """``mcer-bench describe NAME`` as text."""
    width = width or shutil.get_terminal_size((100, 20)).columns
    lines = [f"{info['name']} ({info['kind']}): {info['summary']}", f"  {info['object']}"]
    meta = info.get("metadata") or {}
    facts = [f"level: {info['level']}"] if info.get("level") else []
    facts += [f"{k}: {v}" for k, v in meta.items() if k not in ("level", "summary") and isinstance(v, (str, int, float))]
    if facts:
        lines.append("  " + "; ".join(facts))
    if info.get("presets"):
        lines.append(f"  presets: {', '.join(info['presets'])} (mcer-bench describe {info['name']} --preset NAME)")
    for set_name, labels in (info.get("model_sets") or {}).items():
        lines.append(f"  model set {set_name!r}: {len(labels)} variants ([[models]] set = \"{set_name}\")")
    lines += ["", "options:"] + options_text(info["options"], width)
    table = info.get("severity_table")
    if table:
        values = ", ".join(f"{s}: {v}" for s, v in enumerate(table["values"]))
        lines += ["", f"severities ({table['parameter']}, {table['unit']}): {values}"]
    model = info.get("model")
    if model:
        spec = model["spec"]
        dims = ", ".join(f"{m} {d}" for m, d in spec["dims"].items())
        lines += ["", f"built on {info.get('data', 'the given dims')} ({dims}; {_task_words(spec)}):",
                  f"  parameters: {model['params']:,} ({model['trainable_params']:,} trainable)"]
        if model.get("flops_per_utterance") is not None:
            lines.append(f"  FLOPs per utterance: {model['flops_per_utterance']:,.0f}")
        lines.append("  blocks:")
        lines += [f"    {b['name']:<20} {b['type']:<24} {b['params']:>12,}" for b in model["blocks"]]
    return "\n".join(lines)


def _task_words(spec: dict[str, Any]) -> str:
    """``classification, 6 classes, 2 speakers`` or ``regression, 1 speaker``."""
    n = spec["num_speakers"]
    task = f"classification, {spec['num_classes']} classes" if spec["task"] == "classification" else "regression"
    return f"{task}, {n} speaker{'s' if n != 1 else ''}"


def preset_text(info: dict[str, Any]) -> str:
    """``mcer-bench describe NAME --preset P`` as text."""
    ref = info["reference"]
    spec = info["spec"]
    dims = ", ".join(f"{m} {d}" for m, d in spec["dims"].items())
    equal = {True: "equal", False: "DIFFERENT", None: "the reference gives no count"}[info["params_equal"]]
    lines = [f"{info['name']} preset {info['preset']!r}",
             f"  reference: {ref['repo']} {ref['path']} @ {ref['commit']}",
             f"             {ref['url']}"]
    if ref.get("config"):
        lines.append(f"  configuration: {ref['config']}")
    lines.append(f"  data: {dims}; {_task_words(spec)}")
    lines.append("  options: " + ", ".join(f"{k}={v!r}" for k, v in info["options"].items()))
    lines.append("  recipe: " + (", ".join(f"{k}={v!r}" for k, v in info["recipe"].items()) or "(trainer defaults)"))
    ref_params = f"{info['reference_params']:,}" if info["reference_params"] is not None else "-"
    lines.append(f"  parameters: {info['params']:,}; reference: {ref_params} ({equal})")
    if ref.get("created_params"):
        lines.append(f"  the reference creates {ref['created_params']:,} (some unused in its forward pass)")
    lines.append("  blocks:")
    lines += [f"    {b['name']:<20} {b['type']:<24} {b['params']:>12,}" for b in info["blocks"]]
    if info["reference_blocks"]:
        lines.append("  per reference block (ours / reference):")
        lines += [f"    {b['name']:<28} {b['params']:>12,} / {b['reference']:>12,}  {'equal' if b['equal'] else 'DIFFERENT'}"
                  for b in info["reference_blocks"]]
    for note in (ref.get("notes"), info.get("notes")):
        if note:
            lines.append(f"  note: {note}")
    return "\n".join(lines)
