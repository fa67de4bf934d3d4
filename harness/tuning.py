"""Search spaces: what a model lets a tuner change, declared beside the model as registry data.

A model registers its space as metadata (like timm's default configs, next to the model)::

    @MODELS.register("tfn", ..., search_space={
        "lr": LogUniform(1e-4, 1e-2),            # a TrainConfig field: a training hyper-parameter
        "weight_decay": LogUniform(1e-6, 1e-3),
        "dropout": Uniform(0.0, 0.5),            # anything else: a constructor option of the model
        "hidden": Choice([16, 32, 64]),
    })

Keys that are :class:`harness.train.TrainConfig` fields set the training recipe; all other keys
are model options. The run layer searches these spaces with Optuna on the validation split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from ``[low, high]``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"Uniform needs low < high, got {self.low!r}, {self.high!r}")

    def describe(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class LogUniform:
    """A positive float drawn uniformly in log space from ``[low, high]`` (learning rates, decays)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 < self.low < self.high:
            raise ValueError(f"LogUniform needs 0 < low < high, got {self.low!r}, {self.high!r}")

    def describe(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class IntRange:
    """An integer drawn from ``low..high`` inclusive (in log space when ``log``)."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low < 1):
            raise ValueError(f"IntRange needs low < high (and low >= 1 when log), got {self.low!r}, {self.high!r}")

    def describe(self) -> str:
        return f"integer {'log-' if self.log else ''}range {self.low}..{self.high}"


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (numbers, strings, booleans)."""

    values: tuple[Any, ...]

    def __init__(self, values: Sequence[Any]) -> None:
        values = tuple(values)
        if len(values) < 2:
            raise ValueError(f"Choice needs at least two values, got {values!r}")
        object.__setattr__(self, "values", values)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


Param = Uniform | LogUniform | IntRange | Choice
SearchSpace = Mapping[str, Param]


def contains(param: Param, value: Any) -> bool:
    """True when ``value`` is a value ``param`` can take (used to check stored trials)."""
    if isinstance(param, Choice):
        return any(value == v and type(value) is type(v) for v in param.values)
    if isinstance(param, IntRange):
        return isinstance(value, int) and not isinstance(value, bool) and param.low <= value <= param.high
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return False
    return param.low <= value <= param.high


def describe_space(space: SearchSpace) -> dict[str, str]:
    """``name -> human description`` (``describe``, reports)."""
    return {k: p.describe() for k, p in space.items()}


def search_space_of(entry: Any) -> SearchSpace:
    """The search space a registry entry declares (empty when it has none)."""
    return entry.metadata.get("search_space") or {}
