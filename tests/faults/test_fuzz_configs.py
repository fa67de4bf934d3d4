"""Item 3, bad inputs: configs. Random mutations of a valid sweep (unknown keys, wrong types,
empty lists, negative or out-of-range severities, removed keys) either validate into a plan or
raise ConfigError naming the key; nothing else ever escapes, and the CLI exits 2 on them."""

from __future__ import annotations

import copy

import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from harness.run.cli import main
from harness.run.config import ConfigError, parse_config
from harness.run.plan import SweepError, make_plan

from ._helpers import TALLY, fuzz_settings, sweep_data

pytestmark = pytest.mark.faults

SECTIONS = {  # where to mutate -> keys worth trying there (known ones and strangers)
    ("run",): ["name", "seeds", "corruption_seed", "device", "executor", "metric", "flavour"],
    ("train",): ["epochs", "batch_size", "lr", "patience", "grad_clip", "class_weights", "amp", "epoch"],
    ("models", 0): ["name", "set", "label", "options", "train", "opts"],
    ("models", 0, "options"): ["hidden", "dropout", "hiddn"],
    ("datasets", 0): ["name", "options", "split"],
    ("datasets", 0, "options"): ["n_train", "keep_raw", "task", "seed", "nope"],
    ("corruptions", 0): ["name", "severities", "options", "label", "severity"],
    ("corruptions", 0, "options"): ["modality", "schedule", "snr"],
    (): ["run", "train", "models", "datasets", "corruptions", "defenses", "train_conditions",
         "include_clean_training", "report", "extra"],
}
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.sampled_from(["text-only", "synthetic", "feature-gaussian", "audio", "ray", "../x", ""]),
    st.lists(st.integers(-3, 9), max_size=4), st.just([]), st.just({}),
    st.dictionaries(st.sampled_from(["name", "hidden", "x"]), st.integers(-2, 3), max_size=2),
)


@st.composite
def mutated_configs(draw: st.DrawFn, allow_none: bool = True) -> dict:
    data = copy.deepcopy(sweep_data())
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(sorted(SECTIONS)))
        node = data
        for part in where:
            if isinstance(node, dict) and part in node or isinstance(node, list) and part < len(node):
                node = node[part]
            else:
                node = None
                break
        if not isinstance(node, dict):
            continue
        key = draw(st.sampled_from(SECTIONS[where]))
        if draw(st.integers(0, 4)) == 0:
            node.pop(key, None)
        else:
            value = draw(VALUES)
            if value is None and not allow_none:
                continue
            node[key] = value
    return data


def _plan_or_clear_error(data: dict) -> str:
    try:
        cfg = parse_config(data, source="fuzz.toml")
    except ConfigError as exc:
        msg = str(exc)
        assert msg.startswith("fuzz.toml: ") and "key '" in msg, msg
        return "refused"
    try:
        assert make_plan(cfg).n_evaluations >= 1
    except SweepError as exc:
        assert "model labels must be unique" in str(exc)
        return "refused"
    return "accepted"


@fuzz_settings(max_examples=400)
@given(mutated_configs())
def test_mutated_configs_validate_or_fail_clearly(data):
    TALLY["fuzzed inputs"] += 1
    _plan_or_clear_error(data)


@pytest.mark.parametrize("data", [
    {**sweep_data(), "flavour": 1},
    {**sweep_data(), "models": []},
    {**sweep_data(), "corruptions": [{"name": "feature-gaussian", "severities": [-1]}]},
    {**sweep_data(), "corruptions": [{"name": "feature-gaussian", "severities": []}]},
    {**sweep_data(), "train": {"epochs": "three"}},
    {**sweep_data(), "train": {"epochs": 0}},
    {**sweep_data(), "models": [{"name": "text-only", "options": {"hidden": "8"}}]},
    {**sweep_data(), "run": {"seeds": [-1]}},
    {**sweep_data(), "run": {"name": "../up"}},
])
def test_known_bad_configs_are_refused_with_the_key(data):
    TALLY["fuzzed inputs"] += 1
    assert _plan_or_clear_error(data) == "refused"


@fuzz_settings(max_examples=12)
@given(mutated_configs(allow_none=False))
def test_cli_dry_run_exits_0_or_2_with_one_message(tmp_path_factory, data):
    TALLY["fuzzed inputs"] += 1
    import io
    from contextlib import redirect_stderr, redirect_stdout

    path = tmp_path_factory.mktemp("cfg") / "fuzz.toml"
    try:
        path.write_text(tomli_w.dumps(data))
    except (TypeError, ValueError):  # e.g. a NaN-free TOML limitation: nothing to feed the CLI
        return
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        code = main(["run", str(path), "--out", str(path.parent / "run"), "--dry-run"])
    assert code in (0, 2)
    if code == 2:
        assert err.getvalue().startswith("mcer-bench: error: ") and "Traceback" not in err.getvalue()
    else:
        assert out.getvalue().startswith("plan: ")
    assert not (path.parent / "run").exists()


@pytest.mark.parametrize("seeds", ["a,b", "-1", "0,0", "1,,2"])
def test_cli_seeds_override_is_validated(tmp_path, capsys, seeds):
    TALLY["fuzzed inputs"] += 1
    path = tmp_path / "ok.toml"
    path.write_text(tomli_w.dumps(sweep_data()))
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--seeds", seeds, "--dry-run"]) == 2
    assert "--seeds expects distinct non-negative integers" in capsys.readouterr().err
