"""A plugin's options as data, read from its signature, and the one check of option values.

A plugin declares each option in its constructor's (or factory's) signature, where a reader can
see it without running or parsing anything:

* the **type** is the annotation: ``int``, ``float``, ``str``, ``bool``, ``X | None``,
  ``tuple[float, ...]``, ``list[str]``, ``dict[str, Any]``, ``Path``...;
* the **choices** are a ``Literal[...]`` annotation (``Literal["l1", "mse"]``, or
  ``Literal["a", "b"] | None``);
* a **numeric limit** is ``Annotated[<type>, Range(...)]``: ``Annotated[float, Range(0, 1,
  high_open=True)]`` is a value in [0, 1). The common ones have names here
  (:data:`DropoutRate`, :data:`PositiveInt`, ...), so a limit is written once;
* the **default** is the signature's default (an option without one is required).

:func:`option_specs` turns that into :class:`OptionSpec` records and :func:`option_problems`
checks values against them. Both serve every consumer: the sweep config's validation,
``mcer-bench describe`` (which prints the ranges) and :meth:`harness.registry.Registry.create`,
which refuses a bad value before the plugin is built.

Third-party plugins written before this contract keep working: an option that declares no
choices gets, as a fallback, the values of the plugin's own check ``if option not in CONSTANT:
raise ...``, found by reading the plugin's source (:mod:`harness.option_source`). Registry metadata
``choices={option: [values]}`` declares choices as well. Limits that are not declared are the
plugin's own business: its checks run when it is built. A corruption's or defence's
``modality`` takes the values its class allows (:meth:`harness.corruption.Corruption.modalities`,
which registration records as the entry's ``modalities`` metadata).
"""

from __future__ import annotations

import collections.abc as abc
import functools
import inspect
import numbers
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Annotated, Any, Literal, Union

from harness.errors import OptionError

_PLAIN_CONSTANTS = (str, int, float, bool, type(None))
_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Range:
    """A numeric option's declared limits, for ``typing.Annotated``: ``Annotated[float, Range(0, 1,
    high_open=True)]`` is a value in [0, 1). ``None`` leaves a side unbounded; ``low_open`` /
    ``high_open`` exclude the bound itself."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __str__(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open or self.low is None else '['}{lo}, {hi}{')' if self.high_open or self.high is None else ']'}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` lies outside the range (``None`` when it is inside)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None  # not a number: the type check names it
        below = self.low is not None and (value < self.low or (self.low_open and value == self.low))
        above = self.high is not None and (value > self.high or (self.high_open and value == self.high))
        if below or above or value != value:  # value != value: NaN
            return f"must lie in {self}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "low_open": self.low_open, "high_open": self.high_open}


DropoutRate = Annotated[float, Range(0, 1, high_open=True)]
"""A dropout probability, in [0, 1): at 1 every activation would be zeroed (nothing trains) and
the inverted-dropout scale 1 / (1 - p) would not exist. Every model's dropout options use it."""
PositiveInt = Annotated[int, Range(1)]
"""A width, a count of layers, heads or items: at least 1."""
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0, low_open=True)]
"""A duration, a temperature, a rate: greater than 0."""
NonNegativeFloat = Annotated[float, Range(0)]
"""A loss weight or a margin: 0 or more."""
UnitInterval = Annotated[float, Range(0, 1)]
"""A proportion or a mixing weight, in [0, 1]."""
DataPath = str | os.PathLike
"""A file or folder option: a string (as a sweep file gives it) or a path object."""


class _Required:
    def __repr__(self) -> str:
        return "(required)"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class OptionSpec:
    """One option of a plugin. ``default`` is :data:`REQUIRED` for a required option;
    ``allowed`` is ``None`` when the values are not enumerable, ``range`` when the option
    declares no numeric limit. ``origin`` says where the allowed values come from:
    ``"declared"`` (the annotation), ``"metadata"`` (registry ``choices``), ``"class"`` (a
    corruption's modality) or ``"source"`` (the fallback that reads a plugin's own checks);
    ``None`` when there are none."""

    name: str
    type: str
    default: Any
    allowed: tuple[Any, ...] | None = None
    range: Range | None = None
    origin: str | None = None
    hint: Any = _EMPTY

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def problem(self, value: Any, declared_only: bool = False) -> str | None:
        """Why ``value`` is not a valid value of this option (``None`` when it is): not one of
        the allowed values, not of the declared type, or outside a declared range (also of a
        tuple's or list's items). ``declared_only`` leaves out allowed values that the plugin
        itself checks when it is built (read from its source, or a corruption's modality)."""
        if self.allowed is not None and not (declared_only and self.origin in ("source", "class")):
            return value_problem(self, value)
        return _hint_problem(self.hint, value)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required,
                "default": None if self.required else _jsonable(self.default),
                "allowed": None if self.allowed is None else [_jsonable(v) for v in self.allowed],
                "range": None if self.range is None else str(self.range),
                "limits": None if self.range is None else self.range.to_dict()}


def accepted_options(obj: Callable[..., Any], n_positional: int = 0) -> dict[str, inspect.Parameter] | None:
    """Keyword parameters ``obj`` accepts after ``n_positional`` positional ones.

    Returns ``None`` when ``obj`` takes ``**kwargs`` (anything goes).
    """
    target = obj.__init__ if inspect.isclass(obj) else obj
    sig = inspect.signature(target)
    params = list(sig.parameters.values())
    if inspect.isclass(obj) and params and params[0].name == "self":
        params = params[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    positional_kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    out: dict[str, inspect.Parameter] = {}
    skipped = 0
    for p in params:
        if p.kind in positional_kinds and skipped < n_positional:
            skipped += 1
            continue
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            out[p.name] = p
    return out


def option_specs(entry: Any, n_positional: int | None = None) -> list[OptionSpec]:
    """Every option of registry entry ``entry`` in signature order (a model's ``spec`` argument
    skipped).

    ``n_positional`` defaults to 1 for models (their :class:`~harness.data.DataSpec`) and 0
    otherwise. A plugin taking ``**kwargs`` lists only its named parameters.
    """
    if n_positional is None:
        n_positional = 1 if entry.kind == "model" else 0
    choices = entry.metadata.get("choices") or {}
    declared = tuple(sorted((k, tuple(v)) for k, v in choices.items()))
    modalities = entry.metadata.get("modalities")
    return list(_specs(entry.obj, n_positional, declared, tuple(modalities) if modalities else None))


@functools.lru_cache(maxsize=1024)
def _specs(obj: Any, n_positional: int, declared: tuple[tuple[str, tuple[Any, ...]], ...],
           modalities: tuple[str, ...] | None) -> tuple[OptionSpec, ...]:
    params = accepted_options(obj, n_positional)
    if params is None:  # **kwargs: list the named parameters anyway
        target = obj.__init__ if inspect.isclass(obj) else obj
        params = {p.name: p for p in list(inspect.signature(target).parameters.values())[n_positional + inspect.isclass(obj):]
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    hints = _hints(obj)
    metadata = dict(declared)
    checked: dict[str, tuple[Any, ...]] | None = None
    out = []
    for name, p in params.items():
        hint = hints.get(name, _EMPTY)
        if hint is _EMPTY and p.default is not _EMPTY and type(p.default) in _PLAIN_TYPES:
            hint = type(p.default)  # an unannotated option: the type of its default
        allowed, origin = metadata.get(name), "metadata"
        if allowed is None:
            allowed, origin = _literal_values(hint), "declared"
        if allowed is None and name == "modality":
            allowed, origin = modalities, "class"
        if allowed is None:
            if checked is None:
                from harness.option_source import found_choices  # the fallback, for undeclared options only

                checked = found_choices(obj)
            allowed, origin = checked.get(name), "source"
        out.append(OptionSpec(name, _type_name(hint, p.default), REQUIRED if p.default is _EMPTY else p.default,
                              tuple(allowed) if allowed is not None else None, _top_range(hint),
                              origin if allowed is not None else None, hint))
    return tuple(out)


def option_problems(entry: Any, options: dict[str, Any], n_positional: int | None = None,
                    declared_only: bool = False) -> dict[str, str]:
    """``option -> why its value is refused`` for every option of ``options`` whose value the
    plugin's declaration refuses (:meth:`OptionSpec.problem`); unknown names are not checked
    here (:func:`harness.registry.check_options` names them)."""
    specs = {s.name: s for s in option_specs(entry, n_positional)}
    return {k: why for k, v in options.items()
            if k in specs and (why := specs[k].problem(v, declared_only)) is not None}


def check_option_values(entry: Any, options: dict[str, Any], what: str, n_positional: int | None = None) -> None:
    """Raise :class:`~harness.errors.OptionError` naming the first option whose value the plugin's
    declaration refuses (its value and what is expected); used by ``Registry.create``. Values
    that only the fallback reads (a plugin's own checks, a corruption's modality) are left to the
    plugin, whose check then runs with its own message; a sweep's validation refuses them before
    the run all the same."""
    for key, why in option_problems(entry, options, n_positional, declared_only=True).items():
        raise OptionError(f"{what} option {key!r} does not allow {options[key]!r}: {why}")


def value_problem(spec: OptionSpec, value: Any) -> str | None:
    """Why ``value`` is not one of ``spec``'s allowed values (``None`` when it is, or when the
    option has no enumerable values)."""
    if spec.allowed is None or any(_same(value, a) for a in spec.allowed):
        return None
    return f"must be one of {', '.join(repr(a) for a in spec.allowed)}"


def _same(value: Any, allowed: Any) -> bool:
    """``value`` equals ``allowed`` as an option value: same type (1 is not True), except that
    an int stands for the float of the same value."""
    if isinstance(value, int) and not isinstance(value, bool) and type(allowed) is float:
        return value == allowed
    return value == allowed and type(value) is type(allowed)


# ------------------------------------------------------------------------------ types

_PLAIN_TYPES = (bool, int, float, str, dict, list, tuple)


def _hints(obj: Any) -> dict[str, Any]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable annotations: types then come from defaults
        return {}


def _union_args(hint: Any) -> tuple[Any, ...]:
    return typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)


def _strip(hint: Any) -> Any:
    """``T`` for ``Annotated[T, ...]``, else ``hint``."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _literal_values(hint: Any) -> tuple[Any, ...] | None:
    values: list[Any] = []
    for a in _union_args(_strip(hint)):
        a = _strip(a)
        if typing.get_origin(a) is Literal:
            values += list(typing.get_args(a))
        elif a is type(None):
            values.append(None)
        else:
            return None
    return tuple(values) if values else None


def _top_range(hint: Any) -> Range | None:
    """The :class:`Range` an option declares for its value (``Annotated[T, Range]``, also as
    ``Annotated[T, Range] | None``); ``None`` when it declares none."""
    for a in (hint, *_union_args(hint)):
        if typing.get_origin(a) is Annotated:
            found = [m for m in typing.get_args(a)[1:] if isinstance(m, Range)]
            if found:
                return found[0]
    return None


def _is_path_type(hint: Any) -> bool:
    return inspect.isclass(hint) and (issubclass(hint, PurePath) or hint is os.PathLike)


def _hint_problem(hint: Any, value: Any) -> str | None:
    """Why ``value`` does not fit the annotation ``hint`` (type, literal values, ranges, also
    of the items of a tuple, list or dict); ``None`` when it fits or when ``hint`` is a type
    this check does not model (the plugin then checks the value itself)."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *marks = typing.get_args(hint)
        why = _hint_problem(base, value)
        for mark in marks if why is None else ():
            why = mark.problem(value) if isinstance(mark, Range) else None
            if why is not None:
                break
        return why
    if origin in (Union, types.UnionType):
        arms = typing.get_args(hint)
        problems = [_hint_problem(a, value) for a in arms]
        if any(p is None for p in problems):
            return None
        # an arm whose type fits but whose range, choices or items do not says why; else the types
        fitting = [p for a, p in zip(arms, problems) if _shallow_fits(a, value)]
        return fitting[0] if len(fitting) == 1 else f"expected {_type_name(hint, _EMPTY, top=False)}"
    if origin is Literal:
        allowed = typing.get_args(hint)
        return None if any(_same(value, a) for a in allowed) else \
            f"must be one of {', '.join(repr(a) for a in allowed)}"
    if hint is _EMPTY or hint is Any or isinstance(hint, typing.TypeVar):
        return None
    if hint is None or hint is type(None):
        return None if value is None else "expected None"
    if hint is bool:
        return None if isinstance(value, bool) else "expected bool"
    if hint is int:
        return None if isinstance(value, numbers.Integral) and not isinstance(value, bool) else "expected int"
    if hint is float:
        return None if isinstance(value, numbers.Real) and not isinstance(value, bool) else "expected float"
    if hint is str:
        return None if isinstance(value, str) else "expected str"
    if _is_path_type(hint):
        return None if isinstance(value, (str, os.PathLike)) else "expected a path (str)"
    container = origin or hint
    if container in (list, tuple, set, frozenset, abc.Sequence, abc.Collection, abc.Iterable):
        return _items_problem(hint, value)
    if container in (dict, abc.Mapping):
        if not isinstance(value, abc.Mapping):
            return f"expected {_type_name(hint, _EMPTY, top=False)}"
        args = typing.get_args(hint)
        for k, v in value.items() if len(args) == 2 else ():
            why = _hint_problem(args[0], k) or _hint_problem(args[1], v)
            if why is not None:
                return f"key {k!r}: {why}"
    return None


def _shallow_fits(hint: Any, value: Any) -> bool:
    """Whether ``value`` is of the kind ``hint`` names, its range, choices and items aside."""
    hint = _strip(hint)
    origin = typing.get_origin(hint)
    if origin is Literal:
        return any(_same(value, a) or type(value) is type(a) for a in typing.get_args(hint))
    container = origin or hint
    if container in (list, tuple, set, frozenset, abc.Sequence, abc.Collection, abc.Iterable):
        return isinstance(value, (list, tuple))
    if container in (dict, abc.Mapping):
        return isinstance(value, abc.Mapping)
    return _hint_problem(hint, value) is None


def _items_problem(hint: Any, value: Any) -> str | None:
    """A tuple or list option: a sequence (a TOML array) whose items fit, of the declared length
    for a fixed-length ``tuple[A, B, C]``."""
    if not isinstance(value, (list, tuple)):
        return f"expected {_type_name(hint, _EMPTY, top=False)}"
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            return f"expected {len(args)} items ({_type_name(hint, _EMPTY, top=False)}), got {len(value)}"
        items = list(zip(args, value))
    else:
        items = [(args[0] if args else Any, v) for v in value]
    for i, (item_hint, v) in enumerate(items):
        why = _hint_problem(item_hint, v)
        if why is not None:
            return f"item {i}: {why}"
    return None


def _type_name(hint: Any, default: Any, top: bool = True) -> str:
    """The type as ``describe`` prints it. A range of the option itself is shown apart
    (:attr:`OptionSpec.range`); a range of a tuple's items is written into the type."""
    if hint is _EMPTY:
        if default is _EMPTY or default is None:
            return "any"
        return type(default).__name__
    if typing.get_origin(hint) is Annotated:
        base = _type_name(typing.get_args(hint)[0], _EMPTY, top)
        rng = _top_range(hint)
        return base if top or rng is None else f"{base} in {rng}"
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " | ".join(dict.fromkeys(_type_name(a, _EMPTY, top) for a in typing.get_args(hint)))
    if hint is type(None):
        return "None"
    if typing.get_origin(hint) is Literal:
        return "str" if all(isinstance(v, str) for v in typing.get_args(hint)) else "literal"
    if hint is Any:
        return "any"
    if hint is os.PathLike:
        return "path"
    origin = typing.get_origin(hint)
    if origin is not None:
        args = ", ".join(_type_name(a, _EMPTY, top=False) if a is not Ellipsis else "..."
                         for a in typing.get_args(hint))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


def _jsonable(value: Any) -> Any:
    if isinstance(value, _PLAIN_CONSTANTS):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
