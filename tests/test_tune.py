"""Validation-only tuning: equal budgets, the test split never consulted, deterministic
proposals, choices stored and trained for the sweep's seeds, bad [tune] sections refused."""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from harness import DATASETS
from harness.data.types import BenchDataset, Dialogue
from harness.run.config import ConfigError, parse_config
from harness.run.driver import run_sweep
from harness.run.plan import make_plan
from harness.run.tune import propose, searches
from harness.store import ResultStore
from harness.tuning import Choice, IntRange, LogUniform, Uniform, contains

TINY = {"n_train": 4, "n_valid": 2, "n_test": 2, "keep_raw": False, "min_utts": 2, "max_utts": 4}


def _sweep(dataset: str = "synthetic", trials: int = 3, parallel: int = 1, executor: str = "local") -> dict:
    return {"run": {"name": "t", "seeds": [0, 1], "executor": executor, "workers": 2},
            "train": {"epochs": 2, "patience": 2},
            "tune": {"trials": trials, "parallel": parallel, "seed": 3},
            "models": [{"name": "text-only"}, {"name": "late-fusion"}],
            "datasets": [{"name": dataset, "options": dict(TINY)}],
            "deployment": {"enabled": False}}


def _run(data: dict, out) -> ResultStore:
    run_sweep(parse_config(data), out, raw_config=data, progress=False, log=lambda _m: None, resume=True)
    return ResultStore(out / "results.sqlite", read_only=True)


def _choices(store: ResultStore) -> dict:
    return {k: (v["options"], v["train"], v["value"], v["trial"]) for k, v in store.artifacts("tuning").items()}


@contextlib.contextmanager
def _garbage_test_dataset():
    """``synthetic`` with every test utterance's features NaN and labels shuffled."""

    def garbage(**options):
        ds = DATASETS.create("synthetic", **options)
        rng = np.random.default_rng(0)
        test = [Dialogue(d.dialogue_id, [replace(u, features={m: torch.full_like(x, float("nan"))
                                                               for m, x in u.features.items()},
                                                 label=int(rng.integers(4)))
                                         for u in d.utterances]) for d in ds.splits["test"]]
        return BenchDataset("tune-garbage-test", ds.spec, {**ds.splits, "test": test}, ds.card)

    DATASETS.register("tune-garbage-test", task="classification")(garbage)
    try:
        yield
    finally:
        DATASETS._entries.pop("tune-garbage-test", None)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune") / "run"
    return _run(_sweep(), out), out


def test_every_model_gets_the_same_budget_and_the_choice_is_stored(clean_run):
    store, _ = clean_run
    trials = store.trials()
    per_model = {v: sorted(t["trial"] for t in trials if t["variant"] == v) for v in ("text-only", "late-fusion")}
    assert per_model == {"text-only": [0, 1, 2], "late-fusion": [0, 1, 2]}
    assert all(t["status"] == "ok" and 0.0 <= t["value"] <= 1.0 and t["metric"] == "wf1" for t in trials)
    choices = store.artifacts("tuning")
    assert set(choices) == {"text-only|synthetic", "late-fusion|synthetic"}
    for c in choices.values():
        mine = [t for t in trials if t["variant"] == c["variant"]]
        assert c["value"] == max(t["value"] for t in mine) and c["budget"] == 3 and c["completed"] == 3
        assert set(c["options"]) | set(c["train"]) == {"lr", "dropout", "hidden"} and "lr" in c["train"]


def test_the_chosen_configuration_trains_for_the_sweeps_seeds(clean_run):
    store, _ = clean_run
    choices = store.artifacts("tuning")
    df = store.dataframe()
    assert sorted(set(zip(df["variant"], df["seed"]))) == [("late-fusion", 0), ("late-fusion", 1),
                                                          ("text-only", 0), ("text-only", 1)]
    for row in df.itertuples():
        chosen = choices[f"{row.variant}|synthetic"]["options"]
        assert {k: row.model_options[k] for k in chosen} == chosen


def test_the_test_split_is_never_read_while_tuning(clean_run, tmp_path):
    store, _ = clean_run
    data = _sweep(dataset="tune-garbage-test")
    with _garbage_test_dataset():
        garbage = _run(data, tmp_path / "run")
    ours = {k.split("|")[0]: v for k, v in _choices(garbage).items()}
    assert ours == {k.split("|")[0]: v for k, v in _choices(store).items()}
    # the grid did read the garbage test split: its cells fail on the NaN inputs
    assert set(garbage.dataframe()["status"]) == {"failed"}


def test_proposals_depend_only_on_the_seed_the_search_and_earlier_rounds():
    cfg = parse_config(_sweep(trials=4))
    s = searches(cfg)[0]
    history = [{"params": {"lr": 1e-3, "dropout": 0.1, "hidden": 64}, "value": 0.5, "status": "ok"}]
    a = propose(s, cfg.tune, 1, history)
    assert a == propose(s, cfg.tune, 1, history)
    assert a != propose(s, cfg.tune, 2, history)
    assert all(contains(s.space[k], v) for k, v in a.items())


def test_a_resumed_search_runs_only_the_missing_trials(clean_run, tmp_path):
    store, out = clean_run
    first = {t["trial"]: (t["params"], t["value"]) for t in store.trials() if t["variant"] == "text-only"}
    data = _sweep(trials=5)  # a larger budget continues the same search
    bigger = _run(data, out)
    trials = [t for t in bigger.trials() if t["variant"] == "text-only"]
    assert [t["trial"] for t in trials] == [0, 1, 2, 3, 4]
    assert {t["trial"]: (t["params"], t["value"]) for t in trials[:3]} == first  # stored trials are not rerun


def test_processes_executor_runs_one_trial_per_task(tmp_path, clean_run):
    store, _ = clean_run
    par = _run(_sweep(parallel=2, executor="processes"), tmp_path / "run")
    assert len(par.trials()) == 6 and all(t["status"] == "ok" for t in par.trials())
    serial = _run(_sweep(parallel=2), tmp_path / "serial")
    assert {(t["variant"], t["trial"]): t["params"] for t in par.trials()} == \
        {(t["variant"], t["trial"]): t["params"] for t in serial.trials()}


def test_tune_section_is_validated():
    with pytest.raises(ConfigError, match=r"tune.trials"):
        parse_config({**_sweep(), "tune": {"trials": 0}})
    with pytest.raises(ConfigError, match=r"'mcer-reference' \(mcer-reference\) declares no search space"):
        parse_config({**_sweep(), "models": [{"name": "mcer-reference"}]})
    with pytest.raises(ConfigError, match=r"tune.models': unknown model label\(s\) \['nope'\]"):
        parse_config({**_sweep(), "tune": {"trials": 2, "models": ["nope"]}})
    with pytest.raises(ConfigError, match=r"tune.metric': unknown metric 'f9'"):
        parse_config({**_sweep(), "tune": {"trials": 2, "metric": "f9"}})


def test_plan_applies_a_choice_only_to_its_model_and_dataset():
    cfg = parse_config(_sweep())
    choice = {"options": {"hidden": 32}, "train": {"lr": 0.005}}
    plan = make_plan(cfg, {("text-only", "synthetic"): choice})
    by = {t.label: t for t in plan.trainings}
    assert by["text-only"].options == {"hidden": 32} and by["text-only"].train.lr == 0.005
    assert by["late-fusion"].options == {} and by["late-fusion"].train.lr == cfg.train.train_config().lr


def test_search_space_parameters_check_their_ranges():
    assert contains(LogUniform(1e-4, 1e-2), 1e-3) and not contains(LogUniform(1e-4, 1e-2), 0.5)
    assert contains(IntRange(2, 8), 3) and not contains(IntRange(2, 8), 3.0)
    assert contains(Choice([32, 64]), 64) and not contains(Choice([32, 64]), 48)
    assert not contains(Uniform(0, 1), math.nan)
    with pytest.raises(ValueError, match="low < high"):
        Uniform(1.0, 1.0)
    with pytest.raises(ValueError, match="0 < low"):
        LogUniform(0.0, 1.0)
