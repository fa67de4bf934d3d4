"""mcer-bench: benchmark and evaluation harness for multimodal emotion recognition.

Public surface (docs/DESIGN.md)::

    from harness import MODELS, DATASETS, CORRUPTIONS, DEFENSES, EXTRACTORS
    from harness.data import DataSpec
    model = MODELS.create("mcer", spec, **options)
"""

from harness.registry import CORRUPTIONS, DATASETS, DEFENSES, EXTRACTORS, MODELS, Registry, load_plugins

__version__ = "0.1.0"

__all__ = ["CORRUPTIONS", "DATASETS", "DEFENSES", "EXTRACTORS", "MODELS", "Registry", "load_plugins", "__version__"]
