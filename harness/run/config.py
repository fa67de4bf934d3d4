"""Sweep configuration in TOML, validated before anything runs.

Structure errors (unknown keys, wrong types, empty lists) are caught by pydantic models with
``extra="forbid"``; names and options are then checked against the registries, option values
against each plugin's declaration (:mod:`harness.options`), and what the config points at
(datasets, models on them, corruptions) by :mod:`harness.run.validate`. Every error names the
key, the value and what was expected, and :class:`ConfigError` carries all of them.

Example::

    [run]
    name = "demo"
    seeds = [0, 1, 2]

    [train]
    epochs = 30

    [[models]]
    name = "text-only"
    options = { hidden = 64 }

    [[datasets]]
    name = "synthetic"

    [[corruptions]]
    name = "feature-gaussian"
    severities = [1, 2, 3, 4, 5]
    options = { modality = "audio" }
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.corruption import check_severities
from harness.registry import (
    CORRUPTIONS,
    DATASETS,
    DEFENSES,
    MODELS,
    RegistryError,
)
from harness.run.validate import describe_validation_error, input_problems, option_value_lines
from harness.train import TrainConfig


class ConfigError(ValueError):
    """An invalid sweep configuration; the message lists every problem found."""


EXECUTORS = ("local", "processes", "ray")


ARITHMETIC = ("native", "portable")


def check_seeds(v: list[int]) -> list[int]:
    """Training seeds: distinct non-negative integers."""
    bad = [s for s in v if s < 0]
    if bad:
        raise ValueError(f"seeds must be non-negative integers, got {bad}")
    if len(set(v)) != len(v):
        raise ValueError(f"seeds must be distinct, got {v}")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "3" is not a severity, 1 is not true


class RunSection(_Strict):
    name: str = "sweep"
    seeds: list[int] = Field(default=[0], min_length=1)
    corruption_seed: int = 0
    device: str = "auto"
    metric: str | None = None
    executor: str = "local"
    workers: int | None = Field(default=None, ge=1)  # executor "processes": pool size (default: the CPU cores)
    limit: int | None = Field(default=None, ge=1)  # smoke run: the first `limit` dialogues of each split (--limit)
    # "portable": CPU workers run PyTorch's AVX2 kernels, MKL's reproducible AVX2 path, oneDNN capped at
    # AVX2 and one thread, so training is bit-identical on any x86-64 CPU with AVX2 (docs/PERFORMANCE.md)
    arithmetic: str = "native"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # the default run directory is runs/<name>: a name must not reach outside runs/
        if not v or v in (".", "..") or any(c in v for c in "/\\\0") or v != v.strip():
            raise ValueError(f"run.name names the directory runs/<name>: give a plain name without '/', '\\', "
                             f"'..' or padding, got {v!r}")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        return check_seeds(v)

    @field_validator("arithmetic")
    @classmethod
    def _arithmetic(cls, v: str) -> str:
        if v not in ARITHMETIC:
            raise ValueError(f"arithmetic must be one of {ARITHMETIC}, got {v!r}")
        return v

    @field_validator("executor")
    @classmethod
    def _executor(cls, v: str) -> str:
        if v not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {v!r}")
        return v


class TrainSection(_Strict):
    epochs: int | None = None
    batch_size: int | None = None
    dialogue_batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    optimizer: str | None = None
    momentum: float | None = None
    lr_schedule: str | None = None
    schedule_options: dict[str, float] | None = None
    patience: int | None = None
    grad_clip: float | None = None  # 0 turns clipping off
    grad_clip_mode: str | None = None
    class_weights: str | list[float] | None = None
    selection_metric: str | None = None
    amp: bool | None = None
    selection: str | None = None  # "best" (early stopping on validation) or "last" (a fixed epoch budget)

    def train_config(self, override: TrainSection | None = None, recipe: dict[str, Any] | None = None) -> TrainConfig:
        """TrainConfig defaults < a preset's ``recipe`` < this section < the model entry's ``override``."""
        values = dict(recipe or {})
        values.update({k: v for k, v in self.model_dump().items() if v is not None})
        if override is not None:
            values.update({k: v for k, v in override.model_dump().items() if v is not None})
        return TrainConfig(**values)


class ModelEntry(_Strict):
    name: str | None = None
    set: str | None = None
    label: str | None = None
    preset: str | None = None  # the model's reference configuration: its options and training recipe
    datasets: list[str] | None = Field(default=None, min_length=1)  # dataset labels it runs on (default: all)
    seeds: list[int] | None = Field(default=None, min_length=1)  # this entry's training seeds (default: [run] seeds)
    options: dict[str, Any] = Field(default_factory=dict)
    train: TrainSection | None = None

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        return None if v is None else check_seeds(v)

    def model_options(self) -> dict[str, Any]:
        """The options passed to ``MODELS.create`` (the preset, if any, included)."""
        return {**({"preset": self.preset} if self.preset else {}), **self.options}

    def recipe(self) -> dict[str, Any]:
        """The training recipe of the named preset (empty without one)."""
        if not self.preset or self.name is None:
            return {}
        _, preset, _ = MODELS.resolve(self.name, self.model_options(), n_positional=1, check_values=False)
        return dict(preset.recipe) if preset is not None else {}


EXTRACTOR_SET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"


class DatasetEntry(_Strict):
    name: str
    label: str | None = None  # how results name it (default: name); tells apart two entries of one loader
    options: dict[str, Any] = Field(default_factory=dict)
    # The extractor axis: name -> dataset options that replace `options`' (e.g. {audio = "opensmile",
    # audio_options = {...}}). The entry runs once per set, as the dataset "<label>[<set>]".
    extractor_sets: dict[str, dict[str, Any]] | None = Field(default=None, min_length=1)
    # Set by the expansion of `extractor_sets` (expand_extractor_sets), not written in a config:
    extractor_set: str | None = None  # the set this entry runs (rows record it)
    base_label: str | None = None  # the label of the entry it was expanded from
    origin: str | None = None  # where its options come from in the config, e.g. "datasets.0[is10]"

    @field_validator("extractor_sets")
    @classmethod
    def _set_names(cls, v: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        import re

        bad = [n for n in v or {} if not re.match(EXTRACTOR_SET_NAME, n)]
        if bad:
            raise ValueError(f"extractor set names are plain words (letters, digits, '_', '.', '+', '-'), got {bad}")
        return v

    @property
    def shown(self) -> str:
        return self.label or self.name

    def key(self, index: int) -> str:
        """How messages name this entry: ``datasets.<i>``, or ``datasets.<i>[<set>]`` for an
        extractor set of entry ``i``."""
        return self.origin or f"datasets.{index}"

    def answers_to(self, labels: list[str]) -> bool:
        """Whether a model entry's ``datasets = labels`` includes this entry (by its own label or,
        for an extractor set, by the label of the entry it came from)."""
        return self.shown in labels or (self.base_label is not None and self.base_label in labels)


def expand_extractor_sets(entries: list[DatasetEntry]) -> list[DatasetEntry]:
    """Each entry with ``extractor_sets`` becomes one entry per set (in the config's order):
    labelled ``<label>[<set>]``, with the set's options over the entry's, and knowing its set
    and the label it came from; entries without sets are kept as they are."""
    out = []
    for i, e in enumerate(entries):
        if not e.extractor_sets:
            out.append(e)
            continue
        for name, overrides in e.extractor_sets.items():
            out.append(DatasetEntry(name=e.name, label=f"{e.shown}[{name}]", options={**e.options, **overrides},
                                    extractor_set=name, base_label=e.shown, origin=f"datasets.{i}[{name}]"))
    return out


class CorruptionEntry(_Strict):
    name: str
    severities: list[int] = Field(default=[1, 2, 3, 4, 5], min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None

    @field_validator("severities")
    @classmethod
    def _severities(cls, v: list[int]) -> list[int]:
        return check_severities(v, lowest=0)


class MixEntry(_Strict):
    name: str
    severities: list[int] = Field(default=[1, 2, 3, 4, 5], min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("severities")
    @classmethod
    def _severities(cls, v: list[int]) -> list[int]:
        return check_severities(v, lowest=1)


class TrainConditionEntry(_Strict):
    """Noise-augmented training: ``copies`` corrupted copies of the train split are added,
    each dialogue corrupted by one entry of ``mix`` at one of its severities (seeded)."""

    name: str
    mix: list[MixEntry] = Field(min_length=1)
    copies: int = Field(default=1, ge=1, le=10)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v == "clean":
            raise ValueError("'clean' is the built-in condition; give the augmented condition another name")
        return v


class DefenseEntry(_Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class ReportSection(_Strict):
    metric: str | None = None
    reference: str | None = None  # model label for mCE and effective robustness (e.g. "late-fusion")
    full_model: str | None = None  # model label the ablation compares against (e.g. "mcer")
    # corruption label of the ablation's "under noise" column (its highest severity); default: the
    # corruption at whose highest severity the full model scores worst
    ablation_corruption: str | None = None


class DeploymentSection(_Strict):
    """The deployment profile measured after the grid, once per model and dataset (from the
    first seed's clean-trained checkpoint): see ``harness.profile.deployment_profile``; the
    report's table of them is ``reports.deployment.deployment_table``."""

    enabled: bool = True
    max_utterances: int = Field(default=20, ge=1, le=1000)  # longest streamed dialogue, throughput batch
    repeats: int = Field(default=3, ge=1, le=100)


class FeatureCacheSection(_Strict):
    """The on-disk cache of extracted media features (clean and corrupted) that a sweep shares
    between its models, seeds and worker processes, and that a resumed run reads instead of
    extracting again (:class:`harness.extractors.cache.ExtractionCache`)."""

    dir: str | None = None  # default: <run directory>/feature_cache; shared storage for Ray nodes
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"  # storage dtype; read back as float32
    max_gb: float | None = Field(default=None, gt=0)  # evict least recently used entries past this size

    @field_validator("max_gb", mode="before")
    @classmethod
    def _gb(cls, v: Any) -> Any:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class TuneSection(_Strict):
    """Validation-only hyper-parameter search before the grid (see :mod:`harness.run.tune`).

    Every tuned model gets the same budget of ``trials``, drawn from the search space it
    declares (registry metadata ``search_space``) by Optuna's ``sampler``; each trial trains on
    the train split (``seed``) and is scored on the validation split by ``metric``. The best
    configuration of each model then trains for the sweep's seeds and runs the grid.
    """

    trials: int = Field(ge=1, le=1000)
    sampler: Literal["tpe", "random"] = "tpe"
    seed: int = Field(default=0, ge=0)  # seeds the sampler and each trial's training
    metric: str | None = None  # on the validation split; default: the task's headline metric
    epochs: int | None = Field(default=None, ge=1)  # per trial; default: the training config's
    parallel: int = Field(default=1, ge=1, le=64)  # trials proposed per round (run at once on processes/Ray)
    models: list[str] | None = Field(default=None, min_length=1)  # model labels to tune (default: all)


class SweepConfig(_Strict):
    run: RunSection = Field(default_factory=RunSection)
    train: TrainSection = Field(default_factory=TrainSection)
    models: list[ModelEntry] = Field(min_length=1)
    datasets: list[DatasetEntry] = Field(min_length=1)
    corruptions: list[CorruptionEntry] = Field(default_factory=list)
    defenses: list[DefenseEntry] = Field(default_factory=list)
    train_conditions: list[TrainConditionEntry] = Field(default_factory=list)
    include_clean_training: bool = True
    report: ReportSection = Field(default_factory=ReportSection)
    deployment: DeploymentSection = Field(default_factory=DeploymentSection)
    feature_cache: FeatureCacheSection = Field(default_factory=FeatureCacheSection)
    tune: TuneSection | None = None


def parse_config(data: dict[str, Any], source: str = "config") -> SweepConfig:
    """Validate a config dict: structure first, then registry names and options."""
    try:
        cfg = SweepConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError("\n".join(describe_validation_error(err, source, SweepConfig))) from None
    cfg.datasets = expand_extractor_sets(cfg.datasets)
    problems: list[str] = []
    for i, m in enumerate(cfg.models):
        if (m.name is None) == (m.set is None):
            problems.append(f"{source}: key 'models.{i}': give exactly one of 'name' or 'set' (got name={m.name!r}, set={m.set!r})")
            continue
        if "preset" in m.options:
            problems.append(f"{source}: key 'models.{i}.options.preset': a preset is named by the entry's own key, not "
                            f"among its options: write preset = {m.options['preset']!r} beside name = "
                            f"{m.name or m.set!r} (there it sets both the architecture and the training recipe)")
            continue
        if m.name is not None:
            if not _check(problems, source, f"models.{i}", MODELS, m.name, m.model_options(), n_positional=1):
                continue
        elif m.set not in model_sets():
            problems.append(f"{source}: key 'models.{i}.set': unknown model set {m.set!r}; known sets: {sorted(model_sets())}")
        elif not _set_options_ok(problems, source, i, m):
            continue
        elif m.preset is not None:
            problems.append(f"{source}: key 'models.{i}.preset': a preset applies to one named model, not to the "
                            f"set {m.set!r} (got preset={m.preset!r})")
        try:
            cfg.train.train_config(m.train, m.recipe())
        except ValueError as exc:
            problems.append(f"{source}: key 'models.{i}.train': {exc}")
    for i, d in enumerate(cfg.datasets):
        _check(problems, source, d.key(i), DATASETS, d.name, d.options)
    shown = [d.shown for d in cfg.datasets]
    shown += sorted({d.base_label for d in cfg.datasets if d.base_label is not None} - set(shown))
    repeated = sorted({x for x in shown if shown.count(x) > 1})
    if repeated:
        problems.append(f"{source}: key 'datasets': dataset labels must be unique, repeated: {repeated} (give the "
                        f"entries a 'label')")
    for i, m in enumerate(cfg.models):
        unknown = sorted(set(m.datasets or ()) - set(shown))
        if unknown:
            problems.append(f"{source}: key 'models.{i}.datasets': unknown dataset label(s) {unknown}; the sweep's "
                            f"datasets are {shown}")
    for i, c in enumerate(cfg.corruptions):
        _check(problems, source, f"corruptions.{i}", CORRUPTIONS, c.name, c.options)
    for i, tc in enumerate(cfg.train_conditions):
        for j, mix in enumerate(tc.mix):
            _check(problems, source, f"train_conditions.{i}.mix.{j}", CORRUPTIONS, mix.name, mix.options)
    if not cfg.include_clean_training and not cfg.train_conditions:
        problems.append(f"{source}: key 'include_clean_training': false leaves no training condition; "
                        f"add [[train_conditions]] or set it to true")
    for i, d in enumerate(cfg.defenses):
        _check(problems, source, f"defenses.{i}", DEFENSES, d.name, d.options)
    try:
        cfg.train.train_config()
    except ValueError as exc:
        problems.append(f"{source}: key 'train': {exc}")
    if cfg.tune is not None:
        problems += _tune_problems(cfg, source)
    if not problems:
        problems += input_problems(cfg, source, model_sets())  # datasets, models on them, media: see validate
    if problems:
        raise ConfigError("\n".join(problems))
    return cfg


def _tune_problems(cfg: SweepConfig, source: str) -> list[str]:
    """Every tuned model must declare a search space; ``tune.models`` must name sweep labels."""
    from harness.metrics import METRICS
    from harness.tuning import search_space_of

    assert cfg.tune is not None
    problems = []
    if cfg.tune.metric is not None and cfg.tune.metric not in METRICS:
        problems.append(f"{source}: key 'tune.metric': unknown metric {cfg.tune.metric!r}; known: {', '.join(METRICS)}")
    labels: dict[str, str] = {}
    for entry in cfg.models:
        if entry.name is not None:
            labels[entry.label or (f"{entry.name}[{entry.preset}]" if entry.preset else entry.name)] = entry.name
        elif entry.set in model_sets():
            labels.update({label: name for label, name, _ in model_sets()[entry.set]})
    unknown = sorted(set(cfg.tune.models or ()) - set(labels))
    if unknown:
        problems.append(f"{source}: key 'tune.models': unknown model label(s) {unknown}; the sweep's models are "
                        f"{sorted(labels)}")
    for label in cfg.tune.models or labels:
        name = labels.get(label)
        if name is not None and not search_space_of(MODELS.get(name)):
            problems.append(f"{source}: key 'tune': model {label!r} ({name}) declares no search space; leave it out "
                            f"with tune.models = [...]")
    return problems


def _check(problems: list[str], source: str, key: str, registry: Any, name: str, options: dict[str, Any],
           n_positional: int = 0) -> bool:
    """Append the problems of creating ``name`` with ``options`` (unknown name or option, a value
    its declaration refuses); True when there were none."""
    try:
        _, _, effective = registry.resolve(name, options, n_positional=n_positional, check_values=False)
    except RegistryError as exc:
        problems.append(f"{source}: key '{key}': {exc}")
        return False
    found = option_value_lines(registry, name, effective, f"{key}.options", source, n_positional)
    problems += found
    return not found


def _set_options_ok(problems: list[str], source: str, i: int, entry: ModelEntry) -> bool:
    """The entry's ``options`` are checked with every variant of its model set."""
    found: list[str] = []
    for _, name, options in model_sets()[entry.set or ""]:
        lines: list[str] = []
        _check(lines, source, f"models.{i}", MODELS, name, {**options, **entry.options}, n_positional=1)
        found += [line for line in lines if line not in found]
    problems += found
    return not found


def read_toml(path: str | Path) -> dict[str, Any]:
    """The raw contents of a UTF-8 TOML file; every error names the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; give a .toml file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} is not readable: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); a sweep "
                          f"config is a UTF-8 TOML file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


DEMO_RESOURCE = "demo.toml"


@lru_cache(maxsize=1)
def demo_config_text() -> str:
    """The built-in demo sweep (package data ``harness/run/demo.toml``), read once."""
    return resources.files("harness.run").joinpath(DEMO_RESOURCE).read_text()


def demo_config() -> dict[str, Any]:
    """The built-in demo sweep as a fresh config dict (safe to modify)."""
    return tomllib.loads(demo_config_text())


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a TOML sweep file; errors name the file."""
    return parse_config(read_toml(path), source=str(path))


def model_sets() -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Named model sets: ``name -> [(label, model name, options), ...]``.

    A model declares its sets as registry metadata ``model_sets = {set name: [(variant,
    options), ...]}`` (e.g. ``mcer`` declares ``mcer-ablation``). The variant ``"full"`` is the
    model itself and is labelled with the model's name; any other variant ``v`` of model ``m``
    is labelled ``m[v]`` (e.g. ``mcer[graphs=none]``).
    """
    sets: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for entry in MODELS.entries():
        for set_name, variants in (entry.metadata.get("model_sets") or {}).items():
            if set_name in sets:
                raise RegistryError(f"model set {set_name!r} is declared by two models")
            sets[set_name] = [(entry.name if label == "full" else f"{entry.name}[{label}]", entry.name, dict(opts))
                              for label, opts in variants]
    return sets
