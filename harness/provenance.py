"""Provenance carried by every stored row: config hash, code version, package versions."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("mcer-bench", "torch", "numpy", "scikit-learn", "pandas", "transformers", "albumentations", "noisereduce")


def config_hash(obj: Any) -> str:
    """Stable SHA-256 (first 16 hex digits) of a JSON-serialisable object."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


SOURCE_PACKAGES = ("harness", "mcer", "baselines", "corruptions")
"""Packages whose code computes result rows; ``reports`` only formats them and is left out."""


CODE_VERSION_ENV = "MCER_BENCH_CODE_VERSION"
"""Set by the Ray executor in its tasks' environment to the driver's :func:`code_version`:
the tasks run the driver's code, shipped without its ``.git`` (and, from an installed
package, without a source tree to digest), and their rows must say the same version."""


def source_root() -> Path | None:
    """The directory holding ``harness/`` when it is a source tree (a ``pyproject.toml`` beside
    it: a clone, or the copy a Ray job ships), else None (an installed package)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


@lru_cache(maxsize=1)
def code_version() -> str:
    """The version of the code that computes results: ``<git describe or package version>+src.<digest>``.

    The digest (12 hex digits of SHA-256) covers the content of every ``.py`` file of
    :data:`SOURCE_PACKAGES`, so any change to a model, corruption or the harness gives a new
    version even in an uncommitted tree; ``git describe`` is there for people to read.
    In a Ray task it is the driver's version (:data:`CODE_VERSION_ENV`).
    """
    if os.environ.get(CODE_VERSION_ENV):
        return os.environ[CODE_VERSION_ENV]
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True)
        name = out.stdout.strip() or f"mcer-bench-{_version('mcer-bench')}"
    except (OSError, subprocess.SubprocessError):
        name = f"mcer-bench-{_version('mcer-bench')}"
    return f"{name}+src.{digest.hexdigest()[:12]}"


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not-installed"


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}}


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
