"""A plugin's options as data: name, type, default and allowed values.

``mcer-bench describe`` prints them and the sweep config checks option values against them
before anything runs. Everything is read from the plugin itself, never from a list kept
elsewhere:

* the **type** is the constructor's (or factory's) annotation, else the default's type;
* the **default** is the signature's default (an option without one is required);
* the **allowed values** come, in this order, from the registry metadata ``choices``
  (``{option: [values]}``), a ``Literal[...]`` annotation, or the plugin's own check
  ``if option not in CONSTANT: raise ...`` where ``CONSTANT`` is a tuple, list, set or dict
  of literals. That check is found in the constructor and in the functions and classes the
  constructor hands the option to (``super().__init__`` included), up to three calls deep,
  by reading their source; a check written any other way is not found, and the option then
  shows no allowed values (the plugin still checks it when it is built).
* a corruption's or defence's ``modality`` is one of the data modalities; for a raw-media
  corruption it is the one modality of its raw field (waveforms are audio).
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from harness.registry import Entry, accepted_options

RAW_FIELD_MODALITY = {"waveform": "audio", "frames": "video", "transcript": "text"}
"""The modality whose raw media a raw-level corruption's ``raw_field`` holds."""

_MAX_DEPTH = 3
_PLAIN_CONSTANTS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class OptionSpec:
    """One option of a plugin. ``default`` is :data:`REQUIRED` for a required option;
    ``allowed`` is ``None`` when the values are not enumerable."""

    name: str
    type: str
    default: Any
    allowed: tuple[Any, ...] | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required,
                "default": None if self.required else _jsonable(self.default),
                "allowed": None if self.allowed is None else [_jsonable(v) for v in self.allowed]}


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


class _Required:
    def __repr__(self) -> str:
        return "(required)"


REQUIRED: Any = _Required()


def option_specs(entry: Entry[Any], n_positional: int | None = None) -> list[OptionSpec]:
    """Every option of ``entry`` in signature order (a model's ``spec`` argument skipped).

    ``n_positional`` defaults to 1 for models (their :class:`~harness.data.DataSpec`) and 0
    otherwise. A plugin taking ``**kwargs`` lists only its named parameters.
    """
    if n_positional is None:
        n_positional = 1 if entry.kind == "model" else 0
    obj = entry.obj
    params = accepted_options(obj, n_positional)
    if params is None:  # **kwargs: list the named parameters anyway
        target = obj.__init__ if inspect.isclass(obj) else obj
        params = {p.name: p for p in list(inspect.signature(target).parameters.values())[n_positional + inspect.isclass(obj):]
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    hints = _hints(obj)
    checked = found_choices(obj)
    declared = entry.metadata.get("choices") or {}
    out = []
    for name, p in params.items():
        hint = hints.get(name, inspect.Parameter.empty)
        allowed = declared.get(name)
        if allowed is None:
            allowed = _literal_values(hint)
        if allowed is None:
            allowed = checked.get(name)
        if allowed is None and name == "modality":
            allowed = corruption_modalities(obj)
        out.append(OptionSpec(name, _type_name(hint, p.default), REQUIRED if p.default is p.empty else p.default,
                              tuple(allowed) if allowed is not None else None))
    return out


def corruption_modalities(obj: Any) -> tuple[str, ...] | None:
    """The modalities a corruption or defence class may be given (``None`` for other plugins)."""
    from harness.corruption import Corruption
    from harness.data.types import MODALITIES

    if not (inspect.isclass(obj) and issubclass(obj, Corruption)):
        return None
    field = getattr(obj, "raw_field", "")
    if getattr(obj, "level", "") == "raw" and field in RAW_FIELD_MODALITY:
        return (RAW_FIELD_MODALITY[field],)
    return tuple(MODALITIES)


def value_problem(spec: OptionSpec, value: Any) -> str | None:
    """Why ``value`` is not one of ``spec``'s allowed values (``None`` when it is, or when the
    option has no enumerable values)."""
    if spec.allowed is None or any(value == a and type(value) is type(a) for a in spec.allowed) or (
            isinstance(value, int) and not isinstance(value, bool) and any(
                type(a) is float and value == a for a in spec.allowed)):
        return None
    return f"must be one of {', '.join(repr(a) for a in spec.allowed)}"


# ------------------------------------------------------------------------------ types

def _hints(obj: Any) -> dict[str, Any]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - unresolvable annotations: types then come from defaults
        return {}


def _literal_values(hint: Any) -> tuple[Any, ...] | None:
    args = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
    values: list[Any] = []
    for a in args:
        if typing.get_origin(a) is Literal:
            values += list(typing.get_args(a))
        elif a is type(None):
            values.append(None)
        else:
            return None
    return tuple(values) if values else None


def _type_name(hint: Any, default: Any) -> str:
    if hint is inspect.Parameter.empty:
        if default is inspect.Parameter.empty or default is None:
            return "any"
        return type(default).__name__
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " | ".join(_type_name(a, inspect.Parameter.empty) for a in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if typing.get_origin(hint) is Literal:
        return "str" if all(isinstance(v, str) for v in typing.get_args(hint)) else "literal"
    if hint is Any:
        return "any"
    origin = typing.get_origin(hint)
    if origin is not None:
        args = ", ".join(_type_name(a, inspect.Parameter.empty) if a is not Ellipsis else "..."
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


# ------------------------------------------------------------------------------ checks in the source

def found_choices(obj: Any) -> dict[str, tuple[Any, ...]]:
    """``option -> allowed values`` read from ``if option not in CONSTANT`` checks in the
    plugin's constructor (or factory) and the callables it passes the option to."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    owner = obj if inspect.isclass(obj) else None
    try:
        params = list(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return {}
    return {name: values for name in params if (values := _choices_of(target, owner, name, 0)) is not None}


@functools.lru_cache(maxsize=512)
def _function_ast(func: Any) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def _choices_of(func: Any, owner: type | None, param: str, depth: int) -> tuple[Any, ...] | None:
    node = _function_ast(func)
    if node is None:
        return None
    scope = getattr(func, "__globals__", {})
    for sub in ast.walk(node):
        if isinstance(sub, ast.If):
            values = _not_in_check(sub.test, param, scope, owner)
            if values is not None and any(isinstance(s, ast.Raise) for s in ast.walk(sub)):
                return values
    if depth >= _MAX_DEPTH:
        return None
    for sub in ast.walk(node):
        if not isinstance(sub, ast.Call):
            continue
        callee, callee_owner = _resolve_callee(sub.func, scope, owner)
        if callee is None:
            continue
        target_param = _parameter_receiving(sub, callee, param, bound=callee_owner is not None)
        if target_param is None:
            continue
        values = _choices_of(callee, callee_owner, target_param, depth + 1)
        if values is not None:
            return values
    return None


def _not_in_check(test: ast.expr, param: str, scope: dict[str, Any], owner: type | None) -> tuple[Any, ...] | None:
    if isinstance(test, ast.BoolOp):
        for v in test.values:
            found = _not_in_check(v, param, scope, owner)
            if found is not None:
                return found
        return None
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.NotIn)
            and isinstance(test.left, ast.Name) and test.left.id == param):
        return None
    return _constant_collection(test.comparators[0], scope, owner)


def _constant_collection(node: ast.expr, scope: dict[str, Any], owner: type | None) -> tuple[Any, ...] | None:
    value: Any
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        try:
            value = ast.literal_eval(node)
        except ValueError:
            return None
    elif isinstance(node, ast.Name):
        value = scope.get(node.id, getattr(scope.get("__builtins__"), node.id, None))
    elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
          and owner is not None):
        value = getattr(owner, node.attr, None)
    else:
        return None
    if isinstance(value, dict):
        value = tuple(value)
    if isinstance(value, (set, frozenset)):
        value = tuple(sorted(value, key=repr))
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, _PLAIN_CONSTANTS) for v in value):
        return tuple(value)
    return None


def _resolve_callee(func: ast.expr, scope: dict[str, Any], owner: type | None) -> tuple[Any, type | None]:
    """The function a call runs and, for a constructor or method, the class it belongs to."""
    target: Any = None
    if isinstance(func, ast.Name):
        target = scope.get(func.id)
    elif isinstance(func, ast.Attribute):
        base = func.value
        if (isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super"
                and owner is not None):
            for klass in owner.__mro__[1:]:
                if func.attr in vars(klass):
                    fn = vars(klass)[func.attr]
                    return (fn, klass) if inspect.isfunction(fn) else (None, None)
            return None, None
        if isinstance(base, ast.Name) and isinstance(scope.get(base.id), types.ModuleType):
            target = getattr(scope[base.id], func.attr, None)
    if inspect.isclass(target):
        init = target.__dict__.get("__init__") or next(
            (vars(k)["__init__"] for k in target.__mro__ if "__init__" in vars(k)), None)
        if inspect.isfunction(init) and _is_project_code(init):
            return init, target
        return None, None
    if inspect.isfunction(target) and _is_project_code(target):
        return target, None
    return None, None


def _is_project_code(func: Any) -> bool:
    """Only plugin and framework code is read, not the standard library or site packages."""
    module = getattr(func, "__module__", "") or ""
    return not (module.startswith(("torch", "numpy", "builtins")) or "site-packages" in (
        getattr(getattr(func, "__code__", None), "co_filename", "") or ""))


def _parameter_receiving(call: ast.Call, callee: Any, param: str, bound: bool) -> str | None:
    """The parameter of ``callee`` that ``call`` passes the bare name ``param`` to."""
    try:
        names = list(inspect.signature(callee).parameters)
    except (TypeError, ValueError):
        return None
    if bound and names and names[0] in ("self", "cls"):
        names = names[1:]
    for kw in call.keywords:
        if kw.arg is not None and isinstance(kw.value, ast.Name) and kw.value.id == param:
            return kw.arg
    for i, arg in enumerate(call.args):
        if isinstance(arg, ast.Starred):
            return None
        if isinstance(arg, ast.Name) and arg.id == param and i < len(names):
            return names[i]
    return None
