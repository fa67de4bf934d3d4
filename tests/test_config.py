import pytest

from harness.run.config import ConfigError, load_config, parse_config

BASE = {"models": [{"name": "text-only"}], "datasets": [{"name": "synthetic"}]}


def test_minimal_config_gets_defaults():
    cfg = parse_config(BASE)
    assert cfg.run.seeds == [0] and cfg.corruptions == []


@pytest.mark.parametrize("data,expect", [
    ({**BASE, "modles": []}, r"key 'modles': unknown key; did you mean 'models'\? Valid keys at the top level: corruptions, datasets, "),
    ({**BASE, "models": [{"name": "text-onyl"}]}, r"models.0.*unknown model 'text-onyl'.*Did you mean: text-only"),
    ({**BASE, "models": [{"name": "text-only", "options": {"hiden": 3}}]}, r"no option 'hiden'.*Did you mean 'hidden'"),
    ({**BASE, "corruptions": [{"name": "feature-gaussian", "severities": [1, 7]}]}, r"severities must be integers in 0..5.*\[7\]"),
    ({**BASE, "run": {"seeds": []}}, r"key 'run.seeds'"),
    ({**BASE, "run": {"seeds": "zero"}}, r"key 'run.seeds'.*got 'zero'"),
    ({**BASE, "train": {"epochs": 0}}, r"TrainConfig.epochs must be >= 1"),
    ({**BASE, "models": [{"name": "text-only", "set": "x"}]}, r"exactly one of 'name' or 'set'"),
])
def test_errors_name_key_value_and_expectation(data, expect):
    with pytest.raises(ConfigError, match=expect):
        parse_config(data, source="sweep.toml")


def test_toml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nname = 1")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(("data", "key", "got"), [
    ({"corruptions": [{"name": "audio-white", "severities": ["3"]}]}, "corruptions.0.severities.0", "'3'"),
    ({"run": {"seeds": ["1"]}}, "run.seeds.0", "'1'"),
    ({"train": {"amp": 1}}, "train.amp", "1"),
    ({"train": {"epochs": 3.0}}, "train.epochs", "3.0"),
])
def test_values_of_the_wrong_type_are_refused_not_coerced(data, key, got):
    with pytest.raises(ConfigError, match=rf"key '{key}'.*\(got {got}\)"):
        parse_config({**BASE, **data})


def test_an_integer_is_a_valid_float():
    assert parse_config({**BASE, "train": {"lr": 1}}).train.lr == 1.0


def test_dataset_labels_are_unique_and_models_name_existing_ones():
    two = [{"name": "synthetic", "label": "a"}, {"name": "synthetic", "label": "a"}]
    with pytest.raises(ConfigError, match=r"dataset labels must be unique, repeated: \['a'\]"):
        parse_config({"models": [{"name": "text-only"}], "datasets": two})
    with pytest.raises(ConfigError, match=r"models.0.datasets': unknown dataset label\(s\) \['b'\]"):
        parse_config({"models": [{"name": "text-only", "datasets": ["b"]}],
                      "datasets": [{"name": "synthetic", "label": "a"}]})


def test_a_model_runs_only_on_the_datasets_it_names():
    from harness.run.plan import make_plan

    cfg = parse_config({"models": [{"name": "text-only", "datasets": ["small"]}, {"name": "audio-only"}],
                        "datasets": [{"name": "synthetic", "label": "small", "options": {"n_train": 2}},
                                     {"name": "synthetic", "label": "big"}]})
    cells = {(t.label, t.dataset_shown) for t in make_plan(cfg).trainings}
    assert cells == {("text-only", "small"), ("audio-only", "small"), ("audio-only", "big")}
