"""Options declared in signatures (harness.options): the reader, and a walk over every registered
plugin and every limit it declares.

For each declared range and each declared set of choices, a sweep with a value just outside is
refused by ``--dry-run`` naming the key, and ``describe NAME --json`` shows the range; the
framework's own plugins declare their choices, never leaving them to the source-reading fallback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

import pytest
import tomli_w

from harness.errors import OptionError
from harness.options import (
    DropoutRate,
    PositiveInt,
    Range,
    UnitInterval,
    option_problems,
    option_specs,
)
from harness.registry import ALL_REGISTRIES, Entry, Registry
from harness.run.cli import main

SYNTHETIC = {"name": "synthetic", "options": {"n_train": 2, "n_valid": 1, "n_test": 1, "min_utts": 2, "max_utts": 3,
                                              "keep_raw": False}}
MODEL = {"name": "text-only"}
# what a sweep must give a plugin besides the option under test (its required options)
REQUIRED = {("datasets", "path"): "nowhere.pkl", ("extractors", "path"): "nowhere", ("extractors", "dim"): 4,
            ("extractors", "base"): {"name": "logmel"}, ("extractors", "mean"): [0.0], ("extractors", "std"): [1.0]}


def _outside(spec) -> list:
    """Values just outside ``spec``'s declared range or choices."""
    if spec.allowed is not None:
        numbers = [a for a in spec.allowed if a is not None]
        return [max(numbers) + 1 if all(isinstance(a, int) for a in numbers) else "__not_a_choice__"]
    r, integral = spec.range, spec.type.split(" | ")[0] == "int"
    step = 1 if integral else 1e-6
    out = []
    if r.low is not None:
        out.append(r.low if r.low_open else r.low - step)
    if r.high is not None:
        out.append(r.high if r.high_open else r.high + step)
    return out


def _limits() -> list[tuple[str, str, str, object]]:
    cases = []
    for kind, registry in ALL_REGISTRIES.items():
        for entry in registry.entries():
            if entry.obj.__module__.startswith("docs_"):
                continue
            for spec in option_specs(entry):
                if spec.range is None and (spec.allowed is None or spec.origin != "declared"):
                    continue
                cases += [(kind, entry.name, spec.name, value) for value in _outside(spec)]
    return cases


LIMITS = _limits()


def _sweep(kind: str, name: str, option: str, value: object) -> tuple[dict, str]:
    """A sweep that gives plugin ``name`` the bad ``value`` and the key its line must name."""
    required = {o: v for (k, o), v in REQUIRED.items() if k == kind and o != option}
    entry = ALL_REGISTRIES[kind].get(name)
    required = {o: v for o, v in required.items() if any(s.name == o and s.required for s in option_specs(entry))}
    options = {**required, option: value}
    sweep = {"train": {"epochs": 1}, "models": [MODEL], "datasets": [SYNTHETIC]}
    if kind == "models":
        sweep["models"] = [{"name": name, "options": options}]
        return sweep, f"models.0.options.{option}"
    if kind == "datasets":
        sweep["datasets"] = [{"name": name, "options": options}]
        return sweep, f"datasets.0.options.{option}"
    if kind == "extractors":  # an extractor is configured where a raw corruption re-extracts features
        sweep["corruptions"] = [{"name": "audio-white", "options": {"extractor": {"name": name, **options}}}]
        return sweep, f"corruptions.0.options.extractor.{option}"
    sweep[kind] = [{"name": name, "options": options}]
    return sweep, f"{kind}.0.options.{option}"


def test_the_walk_covers_every_kind_of_plugin():
    kinds = {k for k, *_ in LIMITS}
    assert kinds == set(ALL_REGISTRIES)
    assert len(LIMITS) > 150


@pytest.mark.parametrize(("kind", "name", "option", "value"), LIMITS,
                         ids=[f"{k}:{n}.{o}={v!r}" for k, n, o, v in LIMITS])
def test_a_value_just_outside_a_declared_limit_is_refused_by_dry_run(kind, name, option, value, tmp_path, capsys,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep, key = _sweep(kind, name, option, value)
    Path("sweep.toml").write_text(tomli_w.dumps(sweep))
    assert main(["run", "sweep.toml", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"key '{key}': " in err and f"does not allow {value!r}" in err, err
    assert os.listdir(tmp_path) == ["sweep.toml"]


PLUGINS = sorted({(k, n) for k, n, *_ in LIMITS})


@pytest.mark.parametrize(("kind", "name"), PLUGINS, ids=[f"{k}:{n}" for k, n in PLUGINS])
def test_describe_json_shows_every_declared_range(kind, name, capsys):
    assert main(["describe", name, "--kind", kind, "--json"]) == 0
    shown = {o["name"]: o for o in json.loads(capsys.readouterr().out)["options"]}
    for spec in option_specs(ALL_REGISTRIES[kind].get(name)):
        assert shown[spec.name]["range"] == (None if spec.range is None else str(spec.range))
        if spec.range is not None:
            assert shown[spec.name]["limits"] == {"low": spec.range.low, "high": spec.range.high,
                                                  "low_open": spec.range.low_open, "high_open": spec.range.high_open}
        assert shown[spec.name]["allowed"] == (None if spec.allowed is None else list(spec.allowed))


def test_framework_plugins_declare_their_choices():
    """No built-in option gets its allowed values by reading the plugin's source: they are declared
    (Literal) or, for a corruption's modality, the class's."""
    from_source = [(kind, e.name, s.name) for kind, r in ALL_REGISTRIES.items() for e in r.entries()
                   for s in option_specs(e) if s.origin == "source"]
    assert from_source == []


def test_every_dropout_option_is_a_dropout_rate():
    """One bound for every model's dropout options: [0, 1)."""
    for entry in ALL_REGISTRIES["models"].entries():
        for spec in option_specs(entry):
            if "dropout" in spec.name:
                assert str(spec.range) == "[0, 1)", (entry.name, spec.name)


# ------------------------------------------------------------------------------ the reader

class _Declared:
    def __init__(self, rate: DropoutRate = 0.1, width: PositiveInt | None = None, mode: Literal["a", "b"] = "a",
                 weights: tuple[Annotated[float, Range(0)], ...] = (1.0,), pair: tuple[float, float] = (0.0, 1.0),
                 names: list[str] | None = None, path: str | os.PathLike = "x", share: UnitInterval = 0.5,
                 flag: bool = False, table: dict[str, PositiveInt] | None = None, free=3) -> None:
        pass


def test_the_reader_turns_a_signature_into_specs():
    specs = {s.name: s for s in option_specs(Entry("toy", _Declared, "dataset"))}
    assert str(specs["rate"].range) == "[0, 1)" and specs["rate"].type == "float"
    assert str(specs["width"].range) == "[1, inf)" and specs["width"].type == "int | None"
    assert specs["mode"].allowed == ("a", "b") and specs["mode"].origin == "declared"
    assert specs["weights"].type == "tuple[float in [0, inf), ...]" and specs["weights"].range is None
    assert specs["path"].type == "str | path" and specs["free"].type == "int"


@pytest.mark.parametrize(("option", "value", "why"), [
    ("rate", 1.0, "must lie in [0, 1)"), ("rate", True, "expected float"), ("rate", "0.1", "expected float"),
    ("width", 0, "must lie in [1, inf)"), ("width", 2.0, "expected int in [1, inf) | None"),
    ("mode", "c", "must be one of 'a', 'b'"),
    ("weights", [1.0, -1.0], "item 1: must lie in [0, inf)"), ("weights", 1.0, "expected tuple[float in [0, inf), ...]"),
    ("pair", [1.0], "expected 2 items (tuple[float, float]), got 1"), ("names", ["a", 1], "item 1: expected str"),
    ("path", 3, "expected str | path"), ("share", 1.5, "must lie in [0, 1]"), ("flag", 1, "expected bool"),
    ("table", {"a": 0}, "key 'a': must lie in [1, inf)"), ("free", 2.5, "expected int"),
])
def test_the_reader_checks_types_choices_and_ranges(option, value, why):
    assert option_problems(Entry("toy", _Declared, "dataset"), {option: value}) == {option: why}


@pytest.mark.parametrize(("option", "value"), [
    ("rate", 0), ("rate", 0.99), ("width", None), ("width", 3), ("weights", [0, 2.5]), ("pair", (1, 2)),
    ("names", None), ("path", Path("x")), ("share", 1), ("table", {"a": 1}), ("free", 7),
])
def test_the_reader_accepts_what_the_declaration_allows(option, value):
    assert option_problems(Entry("toy", _Declared, "dataset"), {option: value}) == {}


def test_create_refuses_a_declared_limit_with_an_option_error():
    reg = Registry("widget")
    reg.register("toy")(_Declared)
    with pytest.raises(OptionError, match=r"widget 'toy' option 'rate' does not allow 1\.5: must lie in \[0, 1\)"):
        reg.create("toy", rate=1.5)
    assert isinstance(reg.create("toy", rate=0.5), _Declared)


def test_describe_prints_the_range(capsys):
    assert main(["describe", "late-fusion"]) == 0
    out = capsys.readouterr().out
    assert "dropout  float, default 0.2; in [0, 1)" in out and "hidden   int, default 64; in [1, inf)" in out
