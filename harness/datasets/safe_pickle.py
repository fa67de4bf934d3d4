"""Restricted unpickling for every dataset pickle (docs/FORMATS.md §5).

Only the globals a NumPy-array / container pickle needs are allowed (both the Python-2 and
Python-3 spellings). Anything else, e.g. ``posix.system`` from a malicious ``__reduce__`` or
the torch rebuild functions of MMSA-FET ``return_type='pt'`` files, is refused with
:class:`BlockedGlobalError` naming the file and the global, before it can run. Every load
passes ``encoding='latin1'`` (needed for Python-2 pickles, harmless for Python-3 ones).
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

from harness.errors import DataError

ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("builtins", "set"), ("__builtin__", "set"), ("builtins", "frozenset"), ("__builtin__", "frozenset"),
    ("builtins", "list"), ("__builtin__", "list"), ("builtins", "dict"), ("__builtin__", "dict"),
    ("builtins", "tuple"), ("__builtin__", "tuple"), ("builtins", "complex"), ("__builtin__", "complex"),
    ("collections", "OrderedDict"), ("collections", "defaultdict"), ("_codecs", "encode"),
})


class BlockedGlobalError(pickle.UnpicklingError, DataError):
    """A pickle asked for a global outside :data:`ALLOWED_GLOBALS` (also a ``ValueError``, so the CLI exits 2)."""


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only resolves :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file: Any, source: str = "<stream>") -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        hint = ""
        if module.startswith("torch"):
            hint = " (a file with embedded torch tensors: re-save it with NumPy arrays)"
        raise BlockedGlobalError(f"{self.source}: blocked global {module}.{name}; this pickle would import or run "
                                 f"code outside the allowed NumPy/container globals{hint}")

    def persistent_load(self, pid: Any) -> Any:  # torch-style persistent ids are refused too
        raise BlockedGlobalError(f"{self.source}: blocked persistent id {pid!r}")


def safe_loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with :class:`SafeUnpickler`; errors name ``source``."""
    try:
        return SafeUnpickler(io.BytesIO(data), source).load()
    except BlockedGlobalError:
        raise
    except (EOFError, pickle.UnpicklingError) as exc:
        raise DataError(f"{source}: truncated or corrupt pickle ({type(exc).__name__}: {exc})") from exc
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise DataError(f"{source}: corrupt pickle ({type(exc).__name__}: {exc})") from exc


def safe_load(path: str | Path) -> Any:
    """Unpickle the file at ``path`` safely (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {str(path)!r} does not exist")
    return safe_loads(path.read_bytes(), str(path))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's content (streamed in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
