"""A dataset's spec without its data: what a sweep checks before anything is written.

:func:`read_spec` opens a dataset as its loader would (so a file of the wrong layout fails the
same way) but asks the loader for its :class:`~harness.data.types.DataSpec` only. A loader that
can tell its spec without building every utterance checks :func:`spec_only` once it knows the
spec (layout detected, widths, classes and speakers read) and returns :func:`spec_dataset`: the
built-in pickle loaders skip per-utterance validation, the raw-media loaders skip decoding and
feature extraction (the widths are the extractors'), the synthetic dataset generates nothing.
A loader that does not look at :func:`spec_only` (a third-party one) is loaded whole, which
gives the same spec at a higher cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from harness.data.types import SPLITS, BenchDataset, DataSpec

_SPEC_ONLY: ContextVar[bool] = ContextVar("mcer_bench_spec_only", default=False)


@contextmanager
def reading_spec() -> Iterator[None]:
    """Within this block, loaders that can return their spec alone (:func:`spec_only`) do."""
    token = _SPEC_ONLY.set(True)
    try:
        yield
    finally:
        _SPEC_ONLY.reset(token)


def spec_only() -> bool:
    """Whether the loader is asked for its spec only (:func:`reading_spec`)."""
    return _SPEC_ONLY.get()


def spec_dataset(name: str, spec: DataSpec, card: dict[str, Any] | None = None) -> BenchDataset:
    """What a loader returns when asked for its spec only: the spec, the card, no dialogues."""
    return BenchDataset(name=name, spec=spec, splits={s: [] for s in SPLITS},
                        card={**(card or {}), "spec_only": True})


def read_spec(name: str, options: dict[str, Any]) -> DataSpec:
    """The :class:`DataSpec` of registered dataset ``name`` loaded with ``options``; the loader's
    own errors (a missing file, a wrong layout) propagate as they would from loading it."""
    from harness.registry import DATASETS

    with reading_spec():
        return DATASETS.create(name, **options).spec
