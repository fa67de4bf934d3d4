"""A sweep expanded into cells: train once, evaluate many.

A *training cell* is (model, dataset, training condition, seed); its *evaluation cells* are
the clean test set plus every (corruption, severity, defence). Keys are content hashes of
what the cell computes, so a cell already in the store is recognised on resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any

from harness.provenance import config_hash
from harness.registry import CORRUPTIONS
from harness.run.config import SweepConfig, model_sets
from harness.store import CLEAN
from harness.train import TrainConfig


class SweepError(RuntimeError):
    """A sweep cannot be planned or started: two models share a label, the output directory is
    not writable, another run holds it, or its stored results do not fit this run."""


@dataclass(frozen=True)
class TrainingCell:
    label: str
    model: str
    options: dict[str, Any]
    dataset: str
    dataset_options: dict[str, Any]
    condition: str
    seed: int
    train: TrainConfig
    condition_spec: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None  # only the first `limit` dialogues of each split (run.limit, a smoke run)
    dataset_label: str = ""  # how results name the dataset (default: its registered name)
    extractor_set: str = ""  # the dataset entry's extractor set (rows record it); its options are in the key

    @property
    def dataset_shown(self) -> str:
        return self.dataset_label or self.dataset

    @property
    def key(self) -> str:
        # `limit` enters the key only when set, so the keys of full runs stay what they were
        return config_hash({"model": self.model, "options": self.options, "dataset": self.dataset,
                            "dataset_options": self.dataset_options, "condition": self.condition,
                            "condition_spec": self.condition_spec,
                            "seed": self.seed, "train": self.train.to_dict(),
                            **({"limit": self.limit} if self.limit is not None else {})})


@dataclass(frozen=True)
class EvalCell:
    training: TrainingCell
    corruption: str
    corruption_options: dict[str, Any]
    corruption_label: str
    severity: int
    corruption_seed: int
    defense: str = "none"
    defense_options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return config_hash({"train": self.training.key, "corruption": self.corruption,
                            "corruption_options": self.corruption_options, "severity": self.severity,
                            "corruption_seed": self.corruption_seed, "defense": self.defense,
                            "defense_options": self.defense_options})

    @property
    def test_set_key(self) -> tuple[Any, ...]:
        """Identifies the (corrupted) test set, shared by every model."""
        t = self.training
        return (t.dataset, config_hash(t.dataset_options), t.limit, self.corruption,
                config_hash(self.corruption_options), self.severity, self.corruption_seed, self.defense,
                config_hash(self.defense_options))

    def title(self) -> str | None:
        """The corruption entry in words, as figures and tables name it (``None`` for the clean
        cell): :meth:`harness.corruption.Corruption.display_title` of its class."""
        if self.corruption == CLEAN:
            return None
        return CORRUPTIONS.get(self.corruption).obj.display_title(self.corruption_label, self.corruption_options)

    def severity_parameter(self) -> tuple[str | None, str | None]:
        """The corruption's physical parameter and its value at this severity, e.g.
        ``("snr_db", "0 dB")``; ``(None, None)`` for the clean cell."""
        if self.corruption == CLEAN:
            return None, None
        table = getattr(CORRUPTIONS.get(self.corruption).obj, "table", None)
        if table is None:
            return None, None
        return table.parameter, f"{table.values[self.severity]:g} {table.unit}".strip()


@dataclass
class Plan:
    trainings: list[TrainingCell]
    evaluations: dict[str, list[EvalCell]]  # training key -> its cells

    @property
    def n_evaluations(self) -> int:
        return sum(len(v) for v in self.evaluations.values())

    def describe(self, stored: set[str] | None = None) -> str:
        stored = stored or set()
        todo_eval = sum(1 for cells in self.evaluations.values() for c in cells if c.key not in stored)
        todo_train = sum(1 for t in self.trainings if any(c.key not in stored for c in self.evaluations[t.key]))
        return (f"plan: {len(self.trainings)} trainings x up to {self.n_evaluations // max(len(self.trainings), 1)} "
                f"evaluations each = {self.n_evaluations} evaluation cells; "
                f"to run: {todo_train} trainings, {todo_eval} evaluations "
                f"({self.n_evaluations - todo_eval} already stored)")


def training_lines(plan: Plan) -> list[str]:
    """One line per training cell of ``plan`` (what ``--dry-run`` lists): label, dataset, condition,
    seed, evaluation cells and the main recipe values."""
    out = []
    for t in plan.trainings:
        r = t.train
        out.append(f"  {t.label:<28} {t.dataset_shown:<26} {t.condition:<8} seed={t.seed:<3} "
                   f"cells={len(plan.evaluations[t.key]):<4} {r.optimizer} lr={r.lr:g} epochs={r.epochs} "
                   f"schedule={r.lr_schedule}")
    return out


def expand_models(cfg: SweepConfig) -> list[tuple[str, str, dict[str, Any], TrainConfig]]:
    """(label, model name, options, train config) for every model entry, named sets expanded.

    A preset entry's options carry ``preset`` and its training config starts from the
    preset's recipe (see :meth:`harness.run.config.TrainSection.train_config`).
    """
    return [(label, name, options, train) for label, name, options, train, _ in model_rows(cfg)]


def model_rows(cfg: SweepConfig) -> list[tuple[str, str, dict[str, Any], TrainConfig, list[str] | None]]:
    """:func:`expand_models` plus each model's dataset labels (``None``: every dataset)."""
    return [row for row, _ in _model_rows_and_seeds(cfg)]


def model_seeds(cfg: SweepConfig) -> dict[str, list[int]]:
    """Each model label's training seeds: its entry's ``seeds``, else ``[run] seeds``."""
    return {row[0]: seeds for row, seeds in _model_rows_and_seeds(cfg)}


def _model_rows_and_seeds(cfg: SweepConfig) -> list[tuple[tuple[str, str, dict[str, Any], TrainConfig, list[str] | None],
                                                          list[int]]]:
    out = []
    sets = None
    for entry in cfg.models:
        train = cfg.train.train_config(entry.train, entry.recipe())
        seeds = list(entry.seeds or cfg.run.seeds)
        if entry.set is not None:
            sets = sets or model_sets()
            for label, name, options in sets[entry.set]:
                out.append(((label, name, {**options, **entry.options}, train, entry.datasets), seeds))
        else:
            assert entry.name is not None
            default_label = f"{entry.name}[{entry.preset}]" if entry.preset else entry.name
            out.append(((entry.label or default_label, entry.name, entry.model_options(), train, entry.datasets), seeds))
    labels = [row[0] for row, _ in out]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise SweepError(f"model labels must be unique within a sweep; repeated: {dupes} (set 'label' on the entries)")
    return out


def make_plan(cfg: SweepConfig, tuned: dict[tuple[str, str], dict[str, Any]] | None = None) -> Plan:
    """The training and evaluation cells of ``cfg``. ``tuned`` maps ``(model label, dataset
    label)`` to a tuning choice (:func:`harness.run.tune.run_tuning`): its ``options`` and
    ``train`` values replace the model's for that dataset."""
    tuned = tuned or {}
    trainings: list[TrainingCell] = []
    evaluations: dict[str, list[EvalCell]] = {}
    defenses = [("none", {})] + [(d.name, dict(d.options)) for d in cfg.defenses]
    conditions = [(CLEAN, {})] if cfg.include_clean_training else []
    conditions += [(tc.name, tc.model_dump()) for tc in cfg.train_conditions]
    rows = _model_rows_and_seeds(cfg)
    for ds in cfg.datasets:
        for ((label, name, options, train, only), seeds), (cond, cond_spec) in product(rows, conditions):
            if only is not None and not ds.answers_to(only):
                continue
            choice = tuned.get((label, ds.shown))
            if choice is not None:
                options = {**options, **choice["options"]}
                train = replace(train, **choice["train"])
            shown = label if cond == CLEAN else f"{label}+{cond}"
            for seed in seeds:
                t = TrainingCell(shown, name, options, ds.name, dict(ds.options), cond, seed, train, cond_spec,
                                 cfg.run.limit, dataset_label=ds.label or "", extractor_set=ds.extractor_set or "")
                trainings.append(t)
                evaluations[t.key] = _evaluation_cells(cfg, t, defenses)
    return Plan(trainings, evaluations)


def _evaluation_cells(cfg: SweepConfig, t: TrainingCell, defenses: list[tuple[str, dict[str, Any]]]) -> list[EvalCell]:
    """The clean cell of training ``t``, then every (corruption, severity >= 1, defence) cell."""
    cells = [EvalCell(t, CLEAN, {}, CLEAN, 0, cfg.run.corruption_seed)]
    for c in cfg.corruptions:
        clabel = c.label or corruption_label(c.name, c.options)
        for sev in c.severities:
            if sev == 0:
                continue  # severity 0 is the clean cell, stored once
            for dname, dopts in defenses:
                cells.append(EvalCell(t, c.name, dict(c.options), clabel, sev, cfg.run.corruption_seed, dname, dopts))
    return cells


def corruption_label(name: str, options: dict[str, Any]) -> str:
    """How a corruption entry without a ``label`` is named in results, e.g.
    ``feature-gaussian[modality=audio]``."""
    extra = ",".join(f"{k}={v}" for k, v in sorted(options.items()))
    return f"{name}[{extra}]" if extra else name
