"""Provenance carried by every stored row: config hash, code version, package versions."""

from __future__ import annotations

import hashlib
import json
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


@lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe`` of the source tree (``-dirty`` when modified), else the package version."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"mcer-bench-{_version('mcer-bench')}"


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
