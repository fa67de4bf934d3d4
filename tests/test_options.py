"""A plugin's options as data (harness.options): types, defaults and allowed values read from
the plugin's own annotations, metadata and checks."""

from __future__ import annotations

from typing import Literal

from harness.options import REQUIRED, option_specs, value_problem
from harness.registry import CORRUPTIONS, DATASETS, Entry

MODES = ("fast", "slow")


def _check(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


class _Inner:
    def __init__(self, width: int, kind: str) -> None:
        if kind not in ("a", "b"):
            raise ValueError(kind)


class _Base:
    def __init__(self, level: str = "x") -> None:
        if level not in {"x", "y"}:
            raise ValueError(level)


class _Plugin(_Base):
    def __init__(self, path: str, mode: str = "fast", kind: str = "a", level: str = "x", shape: Literal["round", "flat"] = "round",
                 colour: str = "red", free: str = "anything", count: int = 3) -> None:
        super().__init__(level=level)
        _check(mode)
        self.inner = _Inner(count, kind)
        if colour == "green":  # not a 'not in CONSTANT' check: not listed
            raise ValueError(colour)


def test_allowed_values_from_checks_literals_and_metadata():
    entry = Entry("toy", _Plugin, "dataset", {"choices": {"colour": ("red", "blue")}})
    specs = {s.name: s for s in option_specs(entry)}
    assert specs["path"].default is REQUIRED and specs["path"].required and specs["path"].type == "str"
    assert specs["mode"].allowed == MODES  # through a helper function
    assert specs["kind"].allowed == ("a", "b")  # through a class the option is handed to
    assert specs["level"].allowed == ("x", "y")  # through super().__init__ (a set: sorted)
    assert specs["shape"].allowed == ("round", "flat") and specs["shape"].type == "str"
    assert specs["colour"].allowed == ("red", "blue")  # declared metadata
    assert specs["free"].allowed is None and specs["count"].allowed is None
    assert value_problem(specs["mode"], "fsat") == "must be one of 'fast', 'slow'"
    assert value_problem(specs["mode"], "fast") is None and value_problem(specs["free"], "x") is None


def test_built_in_plugins():
    babble = {s.name: s for s in option_specs(CORRUPTIONS.get("audio-babble"))}
    assert babble["schedule"].allowed == ("stationary", "bursts", "spikes", "rising")  # via super().__init__
    assert babble["modality"].allowed == ("audio",) and babble["talkers"].default == 4
    erc = {s.name: s for s in option_specs(DATASETS.get("erc-pickle"))}
    assert erc["classes"].allowed == (None, 3, 4, 6, 7) and erc["label"].allowed == ("emotion", "sentiment")


def test_range_states_and_checks_its_limits():
    from harness.options import Range

    half_open = Range(0, 1, high_open=True)
    assert str(half_open) == "[0, 1)" and str(Range(1)) == "[1, inf)" and str(Range(high=5, low_open=True)) == "(-inf, 5]"
    assert half_open.problem(0) is None and half_open.problem(0.5) is None
    for bad in (1, 1.5, -0.1, float("nan")):
        assert half_open.problem(bad) == "must lie in [0, 1)"
    assert Range(0, 1, low_open=True).problem(0) == "must lie in (0, 1]"
    assert half_open.problem("x") is None and half_open.problem(True) is None  # types are checked elsewhere
