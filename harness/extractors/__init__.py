"""Registered feature extractors (raw media -> ``[T, D]`` features).

Every submodule is imported here, so a new extractor file registers itself without any
other edit.
"""

from harness._autoimport import import_submodules
from harness.extractors.base import Extractor

import_submodules(__name__)

__all__ = ["Extractor"]
