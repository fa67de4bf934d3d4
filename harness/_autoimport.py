"""Import every submodule of a plugin package, so adding a plugin file needs no other edit."""

from __future__ import annotations

import importlib
import pkgutil
import sys


def import_submodules(package: str) -> list[str]:
    """Import each direct submodule (and subpackage) of ``package``; return their names.

    Modules whose name starts with ``_`` are skipped (private helpers, ``__main__``).
    """
    pkg = sys.modules[package]
    names = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"{package}.{info.name}")
        names.append(info.name)
    return names
