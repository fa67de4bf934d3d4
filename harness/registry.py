"""One generic registry type for every kind of plugin (models, datasets, corruptions, ...).

Modelled on timm's ``register_model`` / ``create_model``: a plugin is a class or a factory
function registered under a name with free-form metadata, created by name with keyword
arguments. Built-in plugins are imported lazily on the first lookup, and third-party
packages add their own through the entry-point group ``mcer_bench.plugins`` (an entry point
names a module to import; importing it registers its plugins).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

from harness.docstrings import first_sentence
from harness.errors import RegistryError
from harness.options import accepted_options, check_option_values
from harness.presets import resolve_preset

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mcer_bench.plugins"

# The framework's own plugin modules (dataset loaders, feature extractors). The plugin packages
# (mcer, baselines, corruptions) are found like any third-party package, through the entry
# points that pyproject.toml declares, so the framework names none of them.
FRAMEWORK_MODULES = ("harness.extractors", "harness.datasets")
DISTRIBUTION = "mcer-bench"

PLUGIN_FAILURES: dict[str, str] = {}
"""``entry point name -> reason`` for every third-party plugin that failed to load (and was
unregistered whole): a sweep that names one of its plugins is refused with that reason."""

FAILED_PLUGIN_NAMES: dict[tuple[str, str], str] = {}
"""``(registry kind, plugin name) -> entry point name`` for each plugin that a failed package
registered before its import failed (and that was removed again)."""

DISABLED_ENV = "MCER_BENCH_DISABLED_PLUGINS"
"""Entry-point names (comma-separated) that :func:`load_plugins` skips without importing: the
driver sets it for its worker processes to the plugins that failed in the driver, so a worker
neither imports a broken package again nor logs its failure once more."""

INCLUDE_ENV = "MCER_BENCH_INCLUDE_PATH"
"""Folders (``os.pathsep``-separated) whose plugin modules :func:`load_plugins` imports, as
``--include-path`` does; inherited by worker processes, so they see the same plugins."""

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered plugin: its name, the object (class or factory) and its metadata."""

    name: str
    obj: T
    kind: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """The whole first sentence of the plugin's docstring as plain text (no reStructuredText
        markup), or its ``summary`` metadata."""
        if "summary" in self.metadata:
            return str(self.metadata["summary"])
        return first_sentence(inspect.getdoc(self.obj) or "")

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description used by ``mcer-bench list --json``."""
        module = getattr(self.obj, "__module__", "?")
        return {
            "name": self.name,
            "kind": self.kind,
            "summary": self.summary,
            "module": module,
            "metadata": {k: _plain_metadata(k, v) for k, v in self.metadata.items() if _is_jsonable(v)},
        }


def _plain_metadata(key: str, value: Any) -> Any:
    """Metadata as JSON data: preset names, search-space descriptions, model-set variant labels."""
    if key == "presets":
        return sorted(value)
    if key == "search_space":
        return {k: p.describe() for k, p in value.items()}
    if key == "model_sets":
        return {name: [label for label, _ in variants] for name, variants in value.items()}
    return value


def _is_jsonable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), list, tuple, dict))


_builtins_loaded = False
_entry_points_loaded = False


def load_plugins() -> None:
    """Import the framework's plugin modules and every ``mcer_bench.plugins`` entry point, once.

    mcer-bench's own plugin packages are entry points of the ``mcer-bench`` distribution; an
    error importing one propagates. A third-party plugin that fails to import is unregistered
    whole (whatever its module registered before failing is removed from every registry),
    recorded in :data:`PLUGIN_FAILURES` and logged once, so one broken package cannot take the
    harness down or half-register. Entry points named in :data:`DISABLED_ENV` are skipped;
    the folders of :data:`INCLUDE_ENV` are imported last (:func:`include_path`).
    """
    global _builtins_loaded, _entry_points_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in FRAMEWORK_MODULES:
            importlib.import_module(module)
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (not _is_own(ep), ep.name))
    own: list[EntryPoint] = []
    if not any(_is_own(ep) for ep in found):
        own = source_tree_entry_points()  # an uninstalled source tree, e.g. the copy a Ray job ships
        found = [*own, *found]
    if not own and not any(_is_own(ep) for ep in found):
        raise RuntimeError(f"mcer-bench's own plugins (mcer, baselines, corruptions) are not registered: the package "
                           f"is not installed in this environment ({ENTRY_POINT_GROUP!r} has no entry point of "
                           f"{DISTRIBUTION!r}); install it with 'python3 -m pip install -e .' from the repository")
    disabled = {n for n in os.environ.get(DISABLED_ENV, "").split(",") if n}
    for ep in found:
        if _is_own(ep) or ep in own:
            ep.load()
        elif ep.name not in disabled and ep.name not in PLUGIN_FAILURES:
            error = _import_whole(ep.load, ep.name)
            if error is not None:
                _failed_entry_points.add(ep.name)
                log.error("plugin %r (%s) failed to load and is not used: %s", ep.name, ep.value, error)
    for folder in filter(None, os.environ.get(INCLUDE_ENV, "").split(os.pathsep)):
        _include_folder(folder)


_failed_entry_points: set[str] = set()


def worker_environment() -> dict[str, str]:
    """The environment variables a worker process needs to see exactly the plugins this process
    sees: the entry points that failed here (skipped there, not imported and logged again)
    and the ``--include-path`` folders. Set them before starting workers."""
    disabled = {n for n in os.environ.get(DISABLED_ENV, "").split(",") if n} | _failed_entry_points
    return {DISABLED_ENV: ",".join(sorted(disabled)), INCLUDE_ENV: os.environ.get(INCLUDE_ENV, "")}


def _import_whole(load: Callable[[], Any], origin: str) -> str | None:
    """Run ``load`` (an import); on failure remove everything it registered from every registry,
    record it in :data:`PLUGIN_FAILURES` and :data:`FAILED_PLUGIN_NAMES`, and return the reason."""
    before = {kind: dict(reg._entries) for kind, reg in ALL_REGISTRIES.items()}
    try:
        load()
    except Exception as exc:  # noqa: BLE001 - the caller reports it, see load_plugins
        for kind, reg in ALL_REGISTRIES.items():
            for name in set(reg._entries) - set(before[kind]):
                FAILED_PLUGIN_NAMES[(reg.kind, name)] = origin
            reg._entries.clear()
            reg._entries.update(before[kind])
        PLUGIN_FAILURES[origin] = f"{type(exc).__name__}: {exc}"
        return PLUGIN_FAILURES[origin]
    return None


class PluginImportError(RegistryError):
    """A module named by ``--include-path`` could not be imported (nothing of it is registered)."""


_included: set[str] = set()


def include_path(folder: str | os.PathLike[str]) -> list[str]:
    """Import every plugin module in ``folder`` (its ``*.py`` files and packages, names not
    starting with ``_``), as an entry point would, and make worker processes do the same
    (through :data:`INCLUDE_ENV`). Returns the module names imported.

    A module that fails to import is unregistered whole and raises :class:`PluginImportError`
    naming the file and the error: a folder the user names explicitly is not skipped silently.
    """
    path = os.path.abspath(os.fspath(folder))
    if not os.path.isdir(path):
        raise PluginImportError(f"--include-path {os.fspath(folder)!r} is not a folder")
    load_plugins()
    names = _include_folder(path, strict=True)
    parts = [p for p in os.environ.get(INCLUDE_ENV, "").split(os.pathsep) if p]
    if path not in parts:
        os.environ[INCLUDE_ENV] = os.pathsep.join([*parts, path])
    return names


def _include_folder(path: str, strict: bool = False) -> list[str]:
    path = os.path.abspath(path)
    if path in _included:
        return []
    _included.add(path)
    modules = sorted(
        name[:-3] if name.endswith(".py") else name
        for name in os.listdir(path)
        if not name.startswith(("_", "."))
        and ((name.endswith(".py") and os.path.isfile(os.path.join(path, name)))
             or os.path.isfile(os.path.join(path, name, "__init__.py")))
    )
    if path not in sys.path:
        sys.path.insert(0, path)
    imported = []
    for module in modules:
        source = os.path.join(path, module + ".py")
        source = source if os.path.isfile(source) else os.path.join(path, module, "__init__.py")
        if module in sys.modules and not _from_folder(sys.modules[module], path):
            error = (f"module name {module!r} is already taken by {getattr(sys.modules[module], '__file__', '?')}; "
                     f"rename the file")
        else:
            error = _import_whole(lambda m=module: importlib.import_module(m), source)
        if error is not None:
            if strict:
                raise PluginImportError(f"--include-path: {source} failed to import: {error}")
            log.error("plugin module %s failed to load and is not used: %s", source, error)
            continue
        imported.append(module)
    return imported


def _from_folder(module: Any, folder: str) -> bool:
    file = getattr(module, "__file__", None)
    return bool(file) and os.path.abspath(file).startswith(folder + os.sep)


def source_tree_entry_points() -> list[EntryPoint]:
    """The ``mcer_bench.plugins`` entry points that ``pyproject.toml`` declares, when this
    harness runs from a source tree that is not installed (a fresh clone run with
    ``python -m harness``, or the tree ``ray job submit --working-dir`` ships to a cluster's
    nodes); empty otherwise. The entry points come from the project file, so the framework
    still names no plugin package."""
    import tomllib

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text()).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return []
    if str(project.get("name", "")).lower() != DISTRIBUTION:
        return []
    table = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    return [EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in sorted(table.items())]


def _is_own(ep: Any) -> bool:
    dist = getattr(ep, "dist", None)
    return dist is not None and (dist.metadata["Name"] or "").lower() == DISTRIBUTION


class Registry(Generic[T]):
    """A named collection of plugins of one kind.

    >>> MODELS = Registry("model")
    >>> @MODELS.register("text-only", level="utterance")
    ... class TextOnly: ...
    """

    def __init__(self, kind: str, base: str | None = None, facts: str | None = None) -> None:
        """``base``: ``"module:Class"`` every registered object must be a subclass of (checked at
        registration, imported then, so creating a registry imports nothing). ``facts``:
        ``"module:function"`` called as ``function(name, obj, metadata)`` at registration; it
        returns the entry's metadata with the facts the object itself holds filled in, and
        raises :class:`RegistryError` where the metadata contradicts them."""
        self.kind = kind
        self.base = base
        self.facts = facts
        self._entries: dict[str, Entry[T]] = {}

    # -- registration -------------------------------------------------------------------
    def register(self, name: str, **metadata: Any) -> Callable[[T], T]:
        """Decorator registering a class or factory under ``name`` with ``metadata``."""
        if not name or name != name.strip() or name in (".", "..") or any(c in name for c in "/\\\0"):
            # names end up in file names (figures, tables): no path separators, no '..'
            raise ValueError(f"{self.kind} name must be a non-empty string without padding, '/', '\\' or "
                             f"'..', got {name!r}")

        def decorator(obj: T) -> T:
            self._check_base(name, obj)
            entry_metadata = self._with_facts(name, obj, metadata)
            existing = self._entries.get(name)
            if existing is not None and existing.obj is not obj:
                # Re-importing the same module (e.g. importlib.reload) re-registers an
                # equivalent object; only a *different* module claiming the name is an error.
                if _qualname(existing.obj) != _qualname(obj):
                    raise RegistryError(
                        f"{self.kind} {name!r} is already registered by {_qualname(existing.obj)}; "
                        f"{_qualname(obj)} cannot take the same name"
                    )
            self._entries[name] = Entry(name=name, obj=obj, kind=self.kind, metadata=entry_metadata)
            return obj

        return decorator

    def _with_facts(self, name: str, obj: Any, metadata: dict[str, Any]) -> dict[str, Any]:
        if self.facts is None:
            return dict(metadata)
        module, _, attr = self.facts.partition(":")
        return dict(getattr(importlib.import_module(module), attr)(name, obj, dict(metadata)))

    def _check_base(self, name: str, obj: Any) -> None:
        if self.base is None:
            return
        module, _, attr = self.base.partition(":")
        base = getattr(importlib.import_module(module), attr)
        if not (inspect.isclass(obj) and issubclass(obj, base)):
            raise RegistryError(f"{self.kind} {name!r} must be a subclass of {module}.{attr}, got {_qualname(obj)}")

    # -- lookup -------------------------------------------------------------------------
    def _all(self) -> dict[str, Entry[T]]:
        load_plugins()
        return self._entries

    def get(self, name: str) -> Entry[T]:
        """The entry registered as ``name``; unknown names list the closest matches."""
        entries = self._all()
        if name in entries:
            return entries[name]
        origin = FAILED_PLUGIN_NAMES.get((self.kind, name))
        if origin is not None:
            raise RegistryError(f"{self.kind} {name!r} is not available: it comes from plugin {origin!r}, which failed "
                                f"to load and is not used ({PLUGIN_FAILURES[origin]})")
        close = difflib.get_close_matches(str(name), list(entries), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        failed = (f" Plugin(s) that failed to load: "
                  f"{'; '.join(f'{k} ({v})' for k, v in sorted(PLUGIN_FAILURES.items()))}." if PLUGIN_FAILURES else "")
        raise RegistryError(
            f"unknown {self.kind} {name!r}.{hint} Registered {self.kind}s: {', '.join(sorted(entries)) or 'none'}."
            f"{failed}"
        )

    def __contains__(self, name: object) -> bool:
        return name in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._all()))

    def __len__(self) -> int:
        return len(self._all())

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style glob, sorted."""
        return sorted(n for n in self._all() if fnmatch.fnmatchcase(n, pattern))

    def entries(self, pattern: str = "*") -> list[Entry[T]]:
        return [self._all()[n] for n in self.names(pattern)]

    # -- creation -----------------------------------------------------------------------
    def create(self, name: str, *args: Any, **options: Any) -> Any:
        """Instantiate plugin ``name`` with positional ``args`` and keyword ``options``.

        Options the plugin does not accept are rejected before the call with an error naming
        the option and the accepted ones (scikit-learn style), instead of a bare TypeError, and
        so is a value its declaration refuses (:mod:`harness.options`: type, choices, range),
        with an :class:`~harness.errors.OptionError` naming the option, the value and what it
        must be. For a plugin with presets (:mod:`harness.presets`), ``preset=NAME`` applies that
        preset's options (explicit options override them) after checking that the first
        positional argument, the :class:`~harness.data.DataSpec`, fits the preset.
        """
        entry, preset, options = self.resolve(name, options, n_positional=len(args))
        if preset is not None and args:
            preset.check_spec(args[0], what=f"{self.kind} {name!r} preset {options_preset_name(entry, preset)!r}")
        return entry.obj(*args, **options)

    def resolve(self, name: str, options: dict[str, Any], n_positional: int = 0,
                check_values: bool = True) -> tuple[Entry[T], Any, dict[str, Any]]:
        """``(entry, preset or None, effective options)`` for creating ``name`` with ``options``.

        Applies ``preset=NAME`` where the plugin declares presets, then checks the effective
        options against the plugin's signature (:func:`check_options`) and, unless
        ``check_values`` is false (the sweep config reports every bad value itself), their values
        against its declaration (:func:`harness.options.check_option_values`).
        """
        entry = self.get(name)
        what = f"{self.kind} {name!r}"
        preset, effective = resolve_preset(entry, options, what)
        check_options(entry.obj, effective, what=what, n_positional=n_positional)
        if check_values:
            check_option_values(entry, effective, what, n_positional)
        return entry, preset, effective


def check_options(obj: Callable[..., Any], options: dict[str, Any], what: str, n_positional: int = 0) -> None:
    """Raise ``RegistryError`` naming any key of ``options`` that ``obj`` does not accept."""
    accepted = accepted_options(obj, n_positional)
    if accepted is None:
        return
    missing = [n for n, p in accepted.items() if p.default is inspect.Parameter.empty and n not in options]
    if missing:
        raise RegistryError(f"{what} needs option(s) {', '.join(repr(m) for m in missing)} (no default); "
                            f"pass them as options, e.g. {missing[0]}=...")
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, list(accepted), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise RegistryError(
                f"{what} has no option {key!r} (value {options[key]!r}).{hint} "
                f"Accepted options: {', '.join(sorted(accepted)) or 'none'}"
            )


def options_preset_name(entry: Entry[Any], preset: Any) -> str:
    """The name under which ``entry`` registered ``preset``."""
    return next((k for k, v in entry.metadata.get("presets", {}).items() if v is preset), "?")


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


MODELS: Registry[Any] = Registry("model", base="harness.models:BenchModel")
DATASETS: Registry[Any] = Registry("dataset")
CORRUPTIONS: Registry[Any] = Registry("corruption", base="harness.corruption:Corruption",
                                      facts="harness.corruption:registered_facts")
DEFENSES: Registry[Any] = Registry("defense", base="harness.corruption:Corruption",
                                   facts="harness.corruption:registered_facts")
EXTRACTORS: Registry[Any] = Registry("extractor", base="harness.extractors.base:Extractor")

ALL_REGISTRIES: dict[str, Registry[Any]] = {
    "models": MODELS,
    "datasets": DATASETS,
    "corruptions": CORRUPTIONS,
    "defenses": DEFENSES,
    "extractors": EXTRACTORS,
}
