"""Every sweep shipped in configs/ validates and expands into the plan it documents."""

from pathlib import Path

import pytest

from harness.run.config import load_config
from harness.run.plan import make_plan

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


def test_built_in_demo_is_one_package_file_read_once():
    from harness.run.config import demo_config, demo_config_text, parse_config

    assert demo_config_text() is demo_config_text()  # read once
    plan = make_plan(parse_config(demo_config(), source="built-in demo"))
    assert len(plan.trainings) == 63 and plan.n_evaluations == 1386
