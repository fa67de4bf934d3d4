"""``KEY=VALUE`` overrides of a sweep config (``mcer-bench run --set``).

A key is the dotted path of a config key as the TOML file would spell it, with list entries
by index: ``train.epochs=3``, ``run.seeds=[0,1]``, ``models.0.options.hidden=16``,
``datasets.0.options.path="data/x.pkl"``. A value is read as a TOML value (numbers, booleans,
strings, arrays, inline tables) and, when it is not valid TOML, taken as a plain string. The
overridden config is validated exactly like a file, so a misspelt key is refused with the
closest valid key.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import tomllib


class OverrideError(ValueError):
    """A ``--set`` that cannot be applied (bad form, or a path through a value or past a list)."""


def parse_value(text: str) -> Any:
    """A TOML value (``3``, ``true``, ``[0, 1]``, ``"x"``, ``{a = 1}``), else the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_pairs(pairs: Sequence[str], what: str = "--set") -> list[tuple[str, Any]]:
    """``[(key, value)]`` of ``KEY=VALUE`` strings; the value parsed by :func:`parse_value`."""
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise OverrideError(f"{what} expects KEY=VALUE, got {pair!r}")
        out.append((key.strip(), parse_value(value.strip())))
    return out


def apply_overrides(raw: dict[str, Any], pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of config ``raw`` with each ``(dotted key, value)`` set; missing tables are made."""
    out = copy.deepcopy(raw)
    for key, value in pairs:
        parts = key.split(".")
        if any(not p for p in parts):
            raise OverrideError(f"--set {key}: empty part in the key (expected e.g. train.epochs)")
        node: Any = out
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            here = ".".join(parts[:depth]) or "the config"
            if isinstance(node, list):
                if not part.isdigit():
                    raise OverrideError(f"--set {key}: {here!r} is a list of tables; give an index, e.g. "
                                        f"{here}.0.{'.'.join(parts[depth:])}")
                index = int(part)
                if index >= len(node):
                    raise OverrideError(f"--set {key}: {here!r} has {len(node)} entr{'y' if len(node) == 1 else 'ies'} "
                                        f"(indices 0..{len(node) - 1}), so index {index} does not exist")
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise OverrideError(f"--set {key}: {here!r} is a value ({node!r}), not a table")
    return out
