"""The fallback for plugins that do not declare their choices: read them from the plugin's checks.

An option whose annotation declares no ``Literal`` (and that registry metadata ``choices`` does not
list) takes the values of the plugin's own check ``if option not in CONSTANT: raise ...``, where
``CONSTANT`` is a tuple, list, set or dict of literals, found in the constructor (or factory) and in
the functions and classes it hands the option to (``super().__init__`` included), up to three calls
deep, by reading their source. A check written any other way is not found; the option then shows no
allowed values, and the plugin still checks it when it is built. mcer-bench's own plugins declare
their choices (:mod:`harness.options`); this module serves third-party ones.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import types
from typing import Any

_MAX_DEPTH = 3
_PLAIN_CONSTANTS = (str, int, float, bool, type(None))


def found_choices(obj: Any) -> dict[str, tuple[Any, ...]]:
    """``option -> allowed values`` read from ``if option not in CONSTANT`` checks in the
    plugin's constructor (or factory) and the callables it passes the option to: the fallback
    for plugins that declare no ``Literal`` (see the module doc)."""
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
