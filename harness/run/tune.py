"""Validation-only hyper-parameter search with an equal budget per model (Optuna).

Before the grid, every tuned (model, dataset) pair gets the same number of trials from the
search space the model declares (:mod:`harness.tuning`). A trial is a training cell with the
trial's options and recipe: it trains on the train split and is scored on the validation split
(the best epoch's value of ``tune.metric``); the test split plays no part. The best trial's
configuration then replaces the model's options and recipe for the sweep's seeds and the grid.

Trials run on the sweep's executor (local, a process pool, or Ray: one trial per task) in rounds
of ``tune.parallel`` trials. Trial ``k`` is proposed by a sampler seeded from ``(tune.seed, the
model, k)`` given the trials of the earlier rounds only, so the proposals do not depend on how
many workers ran them or on an interruption: every trial is stored as soon as it ends, and a
resumed run proposes the missing trials exactly as an uninterrupted run would have.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from harness.metrics import default_metric, higher_is_better
from harness.provenance import config_hash, now_utc
from harness.registry import DATASETS, MODELS
from harness.run.config import DatasetEntry, SweepConfig, TuneSection
from harness.run.plan import TrainingCell, model_rows
from harness.store import CLEAN, ResultStore
from harness.train import TrainConfig, recipe_fields
from harness.tuning import Choice, IntRange, LogUniform, SearchSpace, Uniform, describe_space, search_space_of

log = logging.getLogger(__name__)

RunCells = Callable[[list[tuple[TrainingCell, list[Any]]], Callable[[dict[str, Any]], None]], None]
"""``run(todo, on_training)``: train every cell of ``todo`` on the sweep's executor."""


@dataclass(frozen=True)
class Search:
    """One tuned (model label, dataset): what is searched and from where."""

    label: str
    model: str
    options: dict[str, Any]
    train: TrainConfig
    dataset: DatasetEntry
    space: SearchSpace
    metric: str
    key: str

    @property
    def maximize(self) -> bool:
        return higher_is_better(self.metric)


def searches(cfg: SweepConfig) -> list[Search]:
    """The (model, dataset) pairs ``cfg.tune`` tunes, each with its search key."""
    tune = cfg.tune
    assert tune is not None
    out = []
    for ds in cfg.datasets:
        task = _task_of(ds)
        metric = tune.metric or default_metric(task)
        for label, name, options, train, only in model_rows(cfg):
            if (only is not None and not ds.answers_to(only)) or (tune.models is not None and label not in tune.models):
                continue
            space = search_space_of(MODELS.get(name))
            key = config_hash({"label": label, "model": name, "options": options, "train": train.to_dict(),
                               "dataset": ds.name, "dataset_options": ds.options, "space": describe_space(space),
                               "sampler": tune.sampler, "seed": tune.seed, "metric": metric, "epochs": tune.epochs,
                               "parallel": tune.parallel})
            out.append(Search(label, name, options, train, ds, space, metric, key))
    return out


def _task_of(ds: DatasetEntry) -> str:
    """The dataset's task without loading it: the ``task`` option when given, else what the
    loader declares (a loader serving both defaults to classification)."""
    task = ds.options.get("task")
    if isinstance(task, str):
        return task
    declared = str(DATASETS.get(ds.name).metadata.get("task", "classification"))
    return "regression" if declared == "regression" else "classification"


def _distributions(space: SearchSpace) -> dict[str, Any]:
    import optuna

    dist: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, Uniform):
            dist[name] = optuna.distributions.FloatDistribution(p.low, p.high)
        elif isinstance(p, LogUniform):
            dist[name] = optuna.distributions.FloatDistribution(p.low, p.high, log=True)
        elif isinstance(p, IntRange):
            dist[name] = optuna.distributions.IntDistribution(p.low, p.high, log=p.log)
        elif isinstance(p, Choice):
            dist[name] = optuna.distributions.CategoricalDistribution(p.values)
        else:
            raise TypeError(f"search space parameter {name!r} has unknown type {type(p).__name__}")
    return dist


def propose(search: Search, tune: TuneSection, k: int, history: list[dict[str, Any]]) -> dict[str, Any]:
    """Parameters of trial ``k`` given the completed trials ``history`` (deterministic)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the sampler's seed: the tuning seed, the model and the trial number; the history does the rest
    seed = int(config_hash({"seed": tune.seed, "model": search.label, "trial": k}), 16) % 2**31
    sampler = (optuna.samplers.TPESampler(seed=seed) if tune.sampler == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    study = optuna.create_study(direction="maximize" if search.maximize else "minimize", sampler=sampler)
    dist = _distributions(search.space)
    for t in history:
        if t["status"] == "ok" and t["value"] is not None and math.isfinite(t["value"]):
            study.add_trial(optuna.trial.create_trial(params=t["params"], distributions=dist, value=t["value"]))
    return dict(study.ask(dist).params)


def trial_cell(search: Search, tune: TuneSection, k: int, params: dict[str, Any]) -> TrainingCell:
    """The training cell of trial ``k``: the search's options and recipe with ``params`` applied,
    ``tune.epochs`` epochs, selecting epochs on the tuning metric, trained with ``tune.seed``."""
    options, recipe = {}, {}
    fields = recipe_fields()
    for name, value in params.items():
        (recipe if name in fields else options)[name] = value
    train = replace(search.train, **recipe, selection_metric=search.metric,
                    **({"epochs": tune.epochs} if tune.epochs else {}))
    return TrainingCell(f"{search.label}#trial{k}", search.model, {**search.options, **options}, search.dataset.name,
                        dict(search.dataset.options), CLEAN, tune.seed, train, dataset_label=search.dataset.label or "")


def run_tuning(cfg: SweepConfig, store: ResultStore, run_cells: RunCells,
               say: Callable[[str], None] = print) -> dict[tuple[str, str], dict[str, Any]]:
    """Run every missing trial of ``cfg.tune``; return ``(label, dataset) -> best`` where best holds
    the chosen ``options`` and ``train`` (recipe fields), its ``value``, ``trial`` and the budget.

    Also stores each choice as a ``tuning`` artifact, for the report.
    """
    tune = cfg.tune
    assert tune is not None
    todo_searches = searches(cfg)
    total = len(todo_searches) * tune.trials
    done = sum(min(len(store.trials(s.key)), tune.trials) for s in todo_searches)
    say(f"tuning: {len(todo_searches)} model(s) x {tune.trials} trials ({tune.sampler} sampler, seed {tune.seed}, "
        f"validation {', '.join(sorted({s.metric for s in todo_searches}))}); {total - done} to run, {done} stored")
    while True:
        batch: list[tuple[Search, int, dict[str, Any], TrainingCell]] = []
        for s in todo_searches:
            stored = store.trials(s.key)
            n = len(stored)
            if n >= tune.trials:
                continue
            start = (n // tune.parallel) * tune.parallel
            stored_ids = {t["trial"] for t in stored}
            history = [t for t in stored if t["trial"] < start]
            for k in range(start, min(start + tune.parallel, tune.trials)):
                if k not in stored_ids:
                    params = propose(s, tune, k, history)
                    batch.append((s, k, params, trial_cell(s, tune, k, params)))
        if not batch:
            break
        by_key: dict[str, list[tuple[Search, int, dict[str, Any]]]] = {}
        for s, k, params, cell in batch:
            by_key.setdefault(cell.key, []).append((s, k, params))
        unique = list({cell.key: cell for *_, cell in batch}.values())
        # each trial is stored the moment its training ends, so a kill loses at most the trials running
        run_cells([(cell, []) for cell in unique], lambda row, trials=by_key: _store_trials(store, trials, row))
        for key, missing in by_key.items():  # an executor that returned no record for a cell
            _store_trials(store, {key: missing}, {"train_key": key, "status": "failed",
                                                  "error": "the executor returned no training record"})
    return {(s.label, s.dataset.shown): _choose(s, tune, store) for s in todo_searches}


def _store_trials(store: ResultStore, pending: dict[str, list[tuple[Search, int, dict[str, Any]]]],
                  row: dict[str, Any]) -> None:
    """Store the trial(s) trained by the cell of ``row`` and take them off ``pending``."""
    for s, k, params in pending.pop(row["train_key"], []):
        value = (row.get("fit") or {}).get("best_valid", {}).get(s.metric) if row["status"] == "ok" else None
        store.add_trial({"tune_key": s.key, "trial": k, "variant": s.label, "dataset": s.dataset.shown,
                         "params": params, "metric": s.metric,
                         "value": None if value is None or not math.isfinite(value) else float(value),
                         "status": row["status"], "error": row.get("error"), "train_key": row["train_key"],
                         "created_at": now_utc()})


def _choose(search: Search, tune: TuneSection, store: ResultStore) -> dict[str, Any]:
    trials = [t for t in store.trials(search.key)[:tune.trials] if t["status"] == "ok" and t["value"] is not None]
    if not trials:
        raise RuntimeError(f"tuning {search.label!r} on {search.dataset.shown!r}: all {tune.trials} trials failed; "
                           f"see the trials table of the store")
    sign = -1.0 if search.maximize else 1.0
    best = min(trials, key=lambda t: (sign * t["value"], t["trial"]))  # ties: the earliest trial
    fields = recipe_fields()
    choice = {"variant": search.label, "dataset": search.dataset.shown, "model": search.model,
              "options": {k: v for k, v in best["params"].items() if k not in fields},
              "train": {k: v for k, v in best["params"].items() if k in fields},
              "value": best["value"], "metric": search.metric, "trial": best["trial"], "budget": tune.trials,
              "completed": len(trials), "sampler": tune.sampler, "seed": tune.seed,
              "space": describe_space(search.space)}
    store.add_artifact("tuning", f"{search.label}|{search.dataset.shown}", choice, now_utc())
    return choice
