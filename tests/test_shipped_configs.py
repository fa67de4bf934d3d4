"""Every sweep shipped in configs/ validates and expands into the plan it documents."""

from pathlib import Path

import pytest

from harness.run.config import load_config
from harness.run.plan import make_plan

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_validates(path, tmp_path, monkeypatch):
    if path.stem == "raw_pipeline":  # its inputs are written by the command its header names
        from harness.run.raw_demo import write_inputs

        monkeypatch.chdir(tmp_path)
        write_inputs()
    plan = make_plan(load_config(path))
    assert plan.trainings and plan.n_evaluations >= len(plan.trainings)


def test_raw_pipeline_config_compares_extractor_sets_on_raw_media_written_by_its_command(tmp_path, monkeypatch):
    """The raw demo: its header names the command that writes its inputs; it runs one dataset entry
    through four extractor sets (openSMILE IS10 among them, and the tiny random encoder)."""
    from harness.run.raw_demo import main

    path = Path(__file__).parent.parent / "configs" / "raw_pipeline.toml"
    assert "python -m harness.run.raw_demo" in path.read_text()
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    assert (tmp_path / "runs" / "raw_pipeline_inputs" / "wav2vec2-tiny" / "model.safetensors").is_file()
    cfg = load_config(path)
    assert [d.extractor_set for d in cfg.datasets] == ["logmel", "is10", "egemaps", "wav2vec2-tiny"]
    assert cfg.datasets[1].options["audio_options"] == {"feature_set": "IS10_paraling"}
    plan = make_plan(cfg)
    assert len(plan.trainings) == 3 * 2 * 4 and {t.extractor_set for t in plan.trainings} == {
        "logmel", "is10", "egemaps", "wav2vec2-tiny"}


def test_baselines_config_covers_every_registered_model():
    from harness import MODELS

    cfg = load_config(Path(__file__).parent.parent / "configs" / "baselines.toml")
    listed = {m.name for m in cfg.models}
    assert set(MODELS.names()) - listed == {"mcer-reference"}


def test_built_in_demo_is_one_package_file_read_once():
    from harness.run.config import demo_config, demo_config_text, parse_config

    assert demo_config_text() is demo_config_text()  # read once
    plan = make_plan(parse_config(demo_config(), source="built-in demo"))
    assert len(plan.trainings) == 48 and plan.n_evaluations == 48 * 10  # 8 models x 6 seeds; clean + 3 x 3 severities


def test_preset_sweep_lists_every_preset_model_at_its_reference_dims(capsys):
    from harness import MODELS
    from harness.presets import presets_of
    from harness.run.cli import main

    path = Path(__file__).parent.parent / "configs" / "baselines_presets.toml"
    cfg = load_config(path)
    plan = make_plan(cfg)
    with_presets = {n for n in MODELS if presets_of(MODELS.get(n))}
    assert {t.model for t in plan.trainings} == with_presets
    for t in plan.trainings:
        preset = presets_of(MODELS.get(t.model))[t.options["preset"]]
        dataset = next(d for d in cfg.datasets if d.shown == t.dataset_shown)
        assert dataset.options["dims"] == dict(preset.dims), t.label
        assert t.train.lr == preset.recipe["lr"], t.label  # the reference's recipe, no [train] override
    assert main(["run", str(path), "--dry-run", "--out", "/nonexistent/never-written"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{t.label} " in listed for t in plan.trainings)
