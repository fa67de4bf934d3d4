"""Presets: every registered preset reproduces its reference's parameter counts, fits its own
spec, carries a valid training recipe, and reaches the sweep's training configuration."""

from __future__ import annotations

import pytest
import torch

from harness import DATASETS, MODELS
from harness.data.types import DataSpec
from harness.presets import PresetError, block_params, presets_of
from harness.run.config import parse_config
from harness.run.plan import expand_models
from harness.train import TrainConfig, fit, recipe_fields

PRESETS = [(name, p) for name in MODELS for p in presets_of(MODELS.get(name))]


def _preset(name: str, preset: str):
    return presets_of(MODELS.get(name))[preset]


def test_some_models_declare_presets():
    assert ("mcer-reference", "iemocap") in PRESETS and ("mcer-reference", "meld") in PRESETS


@pytest.mark.parametrize(("name", "preset"), PRESETS)
def test_preset_matches_reference_parameter_counts(name, preset):
    p = _preset(name, preset)
    torch.manual_seed(0)
    model = MODELS.create(name, p.spec(), preset=preset)
    assert p.reference.params is not None, f"{name}[{preset}] names no reference parameter count"
    assert model.num_parameters() == p.reference.params
    if p.reference.blocks:
        assert block_params(model, p) == dict(p.reference.blocks)


@pytest.mark.parametrize(("name", "preset"), PRESETS)
def test_preset_recipe_is_a_valid_train_config(name, preset):
    recipe = dict(_preset(name, preset).recipe)
    assert set(recipe) <= recipe_fields(), f"{name}[{preset}] recipe keys not in TrainConfig: {set(recipe) - recipe_fields()}"
    TrainConfig(**recipe)


def test_spec_with_other_dims_is_refused_naming_both():
    spec = DataSpec(dims={"text": 12, "audio": 10, "video": 6}, num_classes=6, num_speakers=2)
    with pytest.raises(PresetError) as err:
        MODELS.create("mcer-reference", spec, preset="iemocap")
    msg = str(err.value)
    assert "1582" in msg and "'audio': 10" in msg and "iemocap" in msg


def test_task_mismatch_and_unknown_preset_are_refused():
    p = _preset("mcer-reference", "iemocap")
    regression = DataSpec(dims=dict(p.dims), task="regression", num_speakers=2)
    with pytest.raises(PresetError, match="classification configuration"):
        MODELS.create("mcer-reference", regression, preset="iemocap")
    with pytest.raises(PresetError, match=r"no preset 'mosi'.*iemocap, meld"):
        MODELS.create("mcer-reference", p.spec(), preset="mosi")


def test_explicit_options_override_the_preset():
    p = _preset("mcer-reference", "meld")
    model = MODELS.create("mcer-reference", p.spec(), preset="meld", dropout=0.1)
    assert model.pe_dropout.p == 0.1
    assert model.num_parameters() == p.reference.params  # dropout has no parameters


def test_sweep_trains_with_the_preset_recipe_unless_the_config_overrides_it():
    # each preset on synthetic data at its own widths: a preset the data's widths do not fit is refused
    raw = {"run": {"name": "p"}, "train": {"epochs": 2},
           "models": [{"name": "mcer-reference", "preset": "meld", "datasets": ["meld-dims"]},
                      {"name": "mcer-reference", "preset": "iemocap", "label": "ref-i", "train": {"lr": 0.5},
                       "datasets": ["iemocap-dims"]}],
           "datasets": [{"name": "synthetic", "label": "meld-dims",
                         "options": {"dims": {"text": 1024, "audio": 300, "video": 342}}},
                        {"name": "synthetic", "label": "iemocap-dims",
                         "options": {"dims": {"text": 1024, "audio": 1582, "video": 342}}}]}
    cfg = parse_config(raw)
    (label_m, _, options_m, train_m), (label_i, _, _, train_i) = expand_models(cfg)
    assert label_m == "mcer-reference[meld]" and options_m == {"preset": "meld"}
    assert train_m.lr == 5e-5 and train_m.lr_schedule == "cosine" and train_m.epochs == 2  # [train] wins over the recipe
    assert label_i == "ref-i" and train_i.lr == 0.5 and isinstance(train_i.class_weights, list)


def test_a_preset_on_a_set_or_an_unknown_preset_is_a_config_error():
    from harness.run.config import ConfigError

    with pytest.raises(ConfigError, match="models.0.*no preset 'imocap'"):
        parse_config({"models": [{"name": "mcer-reference", "preset": "imocap"}], "datasets": [{"name": "synthetic"}]})
    with pytest.raises(ConfigError, match="models.0.preset"):
        parse_config({"models": [{"set": "mcer-ablation", "preset": "iemocap"}], "datasets": [{"name": "synthetic"}]})


def test_synthetic_dataset_takes_a_presets_dims():
    ds = DATASETS.create("synthetic", dims={"text": 768, "audio": 5, "video": 20}, task="regression", n_train=2,
                         n_valid=1, n_test=1, min_utts=2, max_utts=3)
    assert ds.spec.dims == {"text": 768, "audio": 5, "video": 20}
    u = ds.splits["train"][0].utterances[0]
    assert u.features["text"].shape[1] == 768 and u.features["audio"].shape[1] == 5
    audio = ds.card["extractors"]["audio"]  # projected to the preset's width, then standardised
    assert audio["name"] == "standardized" and audio["base"]["name"] == "projected" and audio["base"]["dim"] == 5
    assert len(audio["mean"]) == len(audio["std"]) == 5
    with pytest.raises(ValueError, match="dims"):
        DATASETS.create("synthetic", dims={"txt": 3})


def test_schedules_optimizers_and_clipping_modes_train():
    ds = DATASETS.create("synthetic", n_train=4, n_valid=2, n_test=1, min_utts=2, max_utts=4, keep_raw=False)
    model = MODELS.create("text-only", ds.spec, hidden=8)
    cfg = TrainConfig(epochs=3, patience=5, optimizer="adamw", lr=0.01, lr_schedule="cosine",
                      schedule_options={"T_max": 3, "eta_min": 0.0}, grad_clip=0.5, grad_clip_mode="value",
                      class_weights=[1.0, 2.0, 1.0, 1.0], amp=False)
    result = fit(model, ds, cfg, seed=0, device="cpu")
    lrs = [row["lr"] for row in result.history]
    assert lrs[0] == pytest.approx(0.01) and lrs[1] < lrs[0] and lrs[2] < lrs[1]


def test_train_config_refuses_bad_recipe_values():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lion")
    with pytest.raises(ValueError, match="schedule_options"):
        TrainConfig(lr_schedule="cosine", schedule_options={"gamma": 0.1})
    with pytest.raises(ValueError, match="class_weights"):
        TrainConfig(class_weights=[1.0, -1.0])
    ds = DATASETS.create("synthetic", n_train=2, n_valid=1, n_test=1, min_utts=2, max_utts=3, keep_raw=False)
    with pytest.raises(ValueError, match="3 weights but dataset 'synthetic' has 4 classes"):
        fit(MODELS.create("text-only", ds.spec, hidden=4), ds, TrainConfig(epochs=1, class_weights=[1.0, 1.0, 1.0]),
            device="cpu")


def test_docs_fidelity_table_is_what_the_code_gives():
    from harness.run.fidelity import DOC, END, START, fidelity_markdown, fidelity_rows, with_table

    rows = fidelity_rows()
    assert {(r["model"], r["preset"]) for r in rows} == set(PRESETS)
    assert all(r["equal"] for r in rows), [r for r in rows if not r["equal"]]
    assert all(r["blocks_equal"] in (True, None) for r in rows)
    doc = DOC.read_text()
    assert doc == with_table(doc, fidelity_markdown(rows)), (
        f"{DOC.name} is out of date: run python -m harness.run.fidelity --write")
    assert doc.index(START) < doc.index(END)


def test_describe_prints_the_released_mcer_recipe(capsys):
    """The released ReDiFu train.py + run_iemocap.sh: Adam(lr 1e-4, weight decay 5e-5), cosine
    annealing over 50 epochs to 1e-6 stepped per epoch, 16 dialogues per batch, 50 epochs, no
    gradient clipping, the NLL weighted by its per-class constants."""
    import json

    from harness.run.cli import main

    assert main(["describe", "mcer-reference", "--preset", "iemocap", "--json"]) == 0
    recipe = json.loads(capsys.readouterr().out)["recipe"]
    assert recipe["optimizer"] == "adam" and recipe["lr"] == 1e-4 and recipe["weight_decay"] == 5e-5
    assert recipe["lr_schedule"] == "cosine" and recipe["schedule_options"] == {"T_max": 50, "eta_min": 1e-6}
    assert recipe["epochs"] == 50 and recipe["dialogue_batch_size"] == 16 and recipe["grad_clip"] is None
    assert recipe["class_weights"] == pytest.approx([1 / 0.086747, 1 / 0.144406, 1 / 0.227883, 1 / 0.160585,
                                                     1 / 0.127711, 1 / 0.252668])
    assert main(["describe", "mcer-reference", "--preset", "meld"]) == 0
    text = capsys.readouterr().out
    assert "lr=5e-05" in text and "epochs=20" in text and "class_weights" not in text
