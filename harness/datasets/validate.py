"""Shared validation for the dataset loaders: features, labels and the repair log.

Every problem is either an error (:class:`DataError`, naming the file, the key and the
utterance id) or a logged, counted repair recorded in ``dataset.card["repairs"]``; nothing
is dropped silently.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
import torch

from harness.errors import DataError
from harness.options import Range

log = logging.getLogger(__name__)

Nonfinite = Literal["error", "zero"]
"""The loaders' ``nonfinite`` option: refuse NaN/inf features, or repair them to 0 (counted)."""
HeldOutFraction = Annotated[float, Range(0, 1, low_open=True, high_open=True)]
"""The share of train dialogues held out for validation (or of videos split off), in (0, 1)."""
MAX_LISTED_REPAIRS = 50
F = TypeVar("F", bound=Callable[..., Any])


def names_the_file(build: F) -> F:
    """Wrap a loader ``build(obj, source, ...)`` so every failure is a :class:`DataError` naming ``source``.

    The loaders check what they can name precisely (keys, shapes, labels); this catches the
    rest of what a malformed or hostile file can provoke (a ``None`` where a dict belongs, a
    ragged array, a string where a number belongs) instead of letting a ``TypeError`` or
    ``IndexError`` from inside NumPy escape.
    """

    @functools.wraps(build)
    def wrapper(obj: Any, source: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return build(obj, source, *args, **kwargs)
        except DataError:
            raise
        except (TypeError, KeyError, IndexError, AttributeError, ValueError, OverflowError) as exc:
            raise DataError(f"{source}: malformed content ({type(exc).__name__}: {exc})") from exc

    return wrapper  # type: ignore[return-value]


class RepairLog:
    """Repairs made while loading one file: counted by kind, the first few listed in full."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.counts: Counter[str] = Counter()
        self.items: list[dict[str, Any]] = []

    def add(self, kind: str, key: str, uid: str, count: int, detail: str) -> None:
        self.counts[kind] += count
        if len(self.items) < MAX_LISTED_REPAIRS:
            self.items.append({"kind": kind, "file": self.source, "key": key, "uid": uid, "count": count,
                               "detail": detail})
        log.warning("%s: key %r, utterance %r: %s (%d, counted as %r)", self.source, key, uid, detail, count, kind)

    def to_card(self) -> dict[str, Any]:
        return {"total": int(sum(self.counts.values())), "by_kind": dict(self.counts), "items": list(self.items),
                "listed": len(self.items)}


def to_features(x: Any, *, source: str, key: str, uid: str, repairs: RepairLog,
                neg_inf_to_zero: bool = False, nonfinite: str = "error") -> torch.Tensor:
    """Convert one utterance's features to float32 ``[T, D]`` (a 1-D vector becomes ``[1, D]``).

    ``neg_inf_to_zero``: replace ``-inf`` by 0 as MMSA does for MOSI audio (a repair).
    ``nonfinite``: ``"error"`` (default) raises on NaN/inf left over; ``"zero"`` repairs them to 0.
    """
    try:
        with np.errstate(over="ignore"):  # values beyond float32 become inf, refused or repaired below
            arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: key {key!r}, utterance {uid!r}: features are not numeric ({exc})") from exc
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DataError(f"{source}: key {key!r}, utterance {uid!r}: features have shape {arr.shape}, expected [T>=1, D>=1]")
    if not np.isfinite(arr).all():
        arr = arr.copy()
        if neg_inf_to_zero:
            n = int(np.isneginf(arr).sum())
            if n:
                arr[np.isneginf(arr)] = 0.0
                repairs.add("neg_inf_to_zero", key, uid, n, "-inf set to 0 (as MMSA does)")
        bad = ~np.isfinite(arr)
        if bad.any():
            n = int(bad.sum())
            kinds = ", ".join(k for k, m in (("NaN", np.isnan(arr)), ("+inf", np.isposinf(arr)),
                                              ("-inf", np.isneginf(arr))) if m.any())
            if nonfinite != "zero":
                raise DataError(f"{source}: key {key!r}, utterance {uid!r}: {n} non-finite feature value(s) ({kinds}); "
                                f"pass nonfinite='zero' to repair them to 0")
            arr[bad] = 0.0
            repairs.add("nonfinite_to_zero", key, uid, n, f"{kinds} set to 0")
    return torch.from_numpy(np.ascontiguousarray(arr))


def check_dims(dims: dict[str, int], modality: str, x: torch.Tensor, source: str, key: str, uid: str) -> None:
    """Record the dim of ``modality`` on first sight; raise if a later utterance differs."""
    d = int(x.shape[1])
    if modality not in dims:
        dims[modality] = d
    elif dims[modality] != d:
        raise DataError(f"{source}: key {key!r}, utterance {uid!r}: feature dim {d} differs from {dims[modality]} "
                        f"of earlier utterances")


def check_score(value: Any, lo: float, hi: float, source: str, key: str, uid: str) -> float:
    """A finite regression label inside ``[lo, hi]``, else ``DataError``."""
    try:
        v = float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError) as exc:
        raise DataError(f"{source}: key {key!r}, utterance {uid!r}: label {value!r} is not a number") from exc
    if not np.isfinite(v) or not lo - 1e-6 <= v <= hi + 1e-6:
        raise DataError(f"{source}: key {key!r}, utterance {uid!r}: label {v} out of range [{lo}, {hi}]")
    return v


def check_label(value: Any, num_classes: int, source: str, key: str, uid: str) -> int:
    """An int class index in ``0..num_classes-1``, else ``DataError``."""
    try:
        f = float(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: key {key!r}, utterance {uid!r}: label {value!r} is not a class index") from exc
    if not f.is_integer() or not 0 <= f < num_classes:
        raise DataError(f"{source}: key {key!r}, utterance {uid!r}: label {value!r} out of range 0..{num_classes - 1}")
    return int(f)


def held_out_valid(train_ids: list[str], valid_fraction: float, seed: int) -> tuple[list[str], list[str], str]:
    """Split train dialogue ids into (train, valid) with a fixed seeded share (a
    :data:`HeldOutFraction`, as the loaders declare it); returns a card note too."""
    if len(train_ids) < 2:
        raise DataError(f"cannot hold out a validation split from {len(train_ids)} train dialogue(s); need >= 2")
    ordered = sorted(train_ids, key=str)
    perm = np.random.default_rng(seed).permutation(len(ordered))
    n_valid = min(len(ordered) - 1, max(1, int(round(valid_fraction * len(ordered)))))
    valid = {ordered[i] for i in perm[:n_valid]}
    note = (f"the file ships no validation split: {n_valid} of {len(ordered)} train dialogues held out "
            f"(valid_fraction={valid_fraction}, seed={seed})")
    return [t for t in train_ids if t not in valid], [t for t in train_ids if t in valid], note
