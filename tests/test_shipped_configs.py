"""Every sweep shipped in configs/ validates and expands into the plan it documents."""

from pathlib import Path

import pytest

from harness.config import load_config
from harness.sweep import make_plan

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_validates(path):
    plan = make_plan(load_config(path))
    assert plan.trainings and plan.n_evaluations >= len(plan.trainings)


def test_baselines_config_covers_every_registered_model():
    from harness import MODELS

    cfg = load_config(Path(__file__).parent.parent / "configs" / "baselines.toml")
    listed = {m.name for m in cfg.models}
    assert set(MODELS.names()) - listed == {"mcer-reference"}


def test_demo_file_is_the_built_in_demo():
    from harness.config import read_toml
    from harness.demo import DEMO_CONFIG

    assert read_toml(Path(__file__).parent.parent / "configs" / "demo.toml") == DEMO_CONFIG
    plan = make_plan(load_config(Path(__file__).parent.parent / "configs" / "demo.toml"))
    assert len(plan.trainings) == 63 and plan.n_evaluations == 1386
