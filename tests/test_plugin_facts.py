"""Each plugin fact has one home: a corruption's name, level, parameter, modality and title live on
its class, registration reads them there (and refuses metadata that disagrees), result rows store
the title, and reports read it from the store. A dataset's spec read without its data equals the
spec of the loaded dataset."""

from __future__ import annotations

import sqlite3

import pytest
from fixtures_datasets import erc_tuple, write_pickle
from report_fixtures import make_run

from harness.corruption import RAW_FIELD_MODALITY, Corruption, RawCorruption, SeverityTable, utterance_rng
from harness.errors import RegistryError
from harness.registry import CORRUPTIONS, DATASETS, DEFENSES, Registry

REGISTERED = [(reg, name) for reg in (CORRUPTIONS, DEFENSES) for name in reg.names()
              if not reg.get(name).obj.__module__.startswith("docs_")]


@pytest.mark.parametrize(("registry", "name"), REGISTERED, ids=[f"{r.kind}:{n}" for r, n in REGISTERED])
def test_every_registered_corruption_holds_its_facts_on_its_class(registry, name):
    entry = registry.get(name)
    cls = entry.obj
    assert cls.name == name  # the name that seeds the paired stream is the registered one
    assert "name" in vars(cls), f"{cls.__qualname__} inherits another corruption's name"
    assert entry.metadata["level"] == cls.level
    own = cls.modalities()
    assert entry.metadata["modalities"] == list(own)
    if isinstance(cls, type) and issubclass(cls, RawCorruption):
        assert own == (RAW_FIELD_MODALITY[cls.raw_field],) and entry.metadata["modality"] == own[0]
    else:
        assert "modality" not in entry.metadata
    if registry is CORRUPTIONS:
        assert entry.metadata["parameter"] == cls.table.parameter
        assert cls.title and cls.display_title(name).startswith(cls.title)
        if name != "audio-background":  # (needs a folder of recordings to be built)
            c = CORRUPTIONS.create(name)  # the paired stream is keyed by the registered name
            assert c.rng_for(0, 1, "u").integers(1 << 30) == utterance_rng(0, name, c.modality, 1, "u").integers(1 << 30)


def _table() -> SeverityTable:
    return SeverityTable("gain", "dB", (0.0, 1.0, 2.0, 3.0, 4.0, 5.0))


def test_registration_sets_the_name_and_fills_the_facts():
    reg = Registry("corruption", base="harness.corruption:Corruption", facts="harness.corruption:registered_facts")

    @reg.register("toy-gain")
    class ToyGain(Corruption):
        table = _table()

    assert ToyGain.name == "toy-gain"
    assert reg.get("toy-gain").metadata == {"level": "features", "parameter": "gain",
                                            "modalities": ["text", "audio", "video"]}


@pytest.mark.parametrize(("metadata", "attrs", "expect"), [
    ({"level": "raw"}, {}, r"metadata level='raw' but the class says 'features'"),
    ({"parameter": "snr"}, {}, r"metadata parameter='snr' but the class says 'gain'"),
    ({"modality": "video"}, {"level": "raw", "raw_field": "waveform"}, r"metadata modality='video' but the class says 'audio'"),
    ({}, {"name": "other-name"}, r"its class Toy sets name = 'other-name'"),
])
def test_registration_refuses_facts_that_disagree_with_the_class(metadata, attrs, expect):
    reg = Registry("corruption", base="harness.corruption:Corruption", facts="harness.corruption:registered_facts")
    base = RawCorruption if attrs.get("level") == "raw" else Corruption
    toy = type("Toy", (base,), {"table": _table(), **attrs})
    with pytest.raises(RegistryError, match=expect):
        reg.register("toy", **metadata)(toy)


def test_a_subclass_of_a_registered_corruption_gets_its_own_name():
    reg = Registry("corruption", base="harness.corruption:Corruption", facts="harness.corruption:registered_facts")
    white = CORRUPTIONS.get("audio-white").obj
    louder = reg.register("toy-louder-white")(type("LouderWhite", (white,), {}))
    assert louder.name == "toy-louder-white" and white.name == "audio-white"


def test_titles_are_stored_with_each_row_and_reported_from_the_store(tmp_path):
    from harness.run.config import parse_config
    from harness.run.driver import run_sweep
    from harness.store import ResultStore
    from reports.aggregate import corruption_titles

    raw = {"run": {"name": "titles"}, "train": {"epochs": 1}, "deployment": {"enabled": False},
           "models": [{"name": "text-only", "options": {"hidden": 8}}],
           "datasets": [{"name": "synthetic", "options": {"n_train": 2, "n_valid": 1, "n_test": 1, "min_utts": 2,
                                                          "max_utts": 3, "keep_raw": False}}],
           "corruptions": [{"name": "feature-missing", "label": "missing text", "severities": [1],
                            "options": {"modality": "text"}},
                           {"name": "feature-gaussian", "label": "feature-gaussian (bursts)", "severities": [1],
                            "options": {"modality": "audio", "schedule": "bursts"}}]}
    run_sweep(parse_config(raw), tmp_path / "run", raw_config=raw, progress=False, log=lambda _m: None)
    df = ResultStore(tmp_path / "run" / "results.sqlite", read_only=True).dataframe()
    stored = dict(zip(df["corruption"], df["title"]))
    assert stored["clean"] != stored["clean"]  # NULL: the clean cell has no corruption to name (NaN in pandas)
    assert stored["missing text"] == "Missing text"
    assert stored["feature-gaussian (bursts)"] == "Feature noise (audio), bursts"
    assert corruption_titles(df) == {"missing text": "Missing text",
                                     "feature-gaussian (bursts)": "Feature noise (audio), bursts"}


def test_a_store_written_before_titles_still_reports(tmp_path, capsys):
    """Rows without a title: ``report`` names them as the sweep would have (from the registry);
    the report module alone falls back to the label."""
    from harness.run.cli import main
    from reports.aggregate import corruption_titles
    from reports.build import build_report

    run = make_run(tmp_path / "old", corruptions=("audio-white", "missing audio"), severities=(1,), seeds=(0,))
    with sqlite3.connect(run / "results.sqlite") as con:  # the results table as it was before the column
        con.execute("ALTER TABLE results DROP COLUMN title")
    from harness.store import ResultStore

    df = ResultStore(run / "results.sqlite", read_only=True).dataframe()
    assert "title" not in df.columns
    assert corruption_titles(df) == {"audio-white": "audio-white", "missing audio": "missing audio"}
    build_report(run, n_boot=50)
    assert main(["report", str(run)]) == 0
    capsys.readouterr()
    header = next(ln for ln in (run / "tables" / "robustness_synthetic.md").read_text().splitlines()
                  if ln.startswith("| Model"))
    assert "White noise (audio)" in header and "Missing audio" in header


def test_erc_spec_read_without_the_data_equals_the_loaded_spec(tmp_path):
    from harness.datasets.spec_only import read_spec

    for layout in ("dialoguernn-iemocap-9", "mmgcn-meld-10", "sdt-12"):
        path = write_pickle(tmp_path / f"{layout}.pkl", erc_tuple(layout, n_train=5))
        for options in ({}, {"label": "sentiment"}):
            if layout == "mmgcn-meld-10" and options:
                continue  # that layout has no sentiment labels
            assert read_spec("erc-pickle", {"path": path, **options}) == \
                DATASETS.create("erc-pickle", path=path, **options).spec


@pytest.mark.parametrize("options", [{}, {"task": "regression"}, {"dims": {"text": 32, "audio": 5}}])
def test_synthetic_spec_read_without_generating_equals_the_generated_spec(options):
    from harness.datasets.spec_only import read_spec

    small = {"n_train": 2, "n_valid": 1, "n_test": 1, "min_utts": 2, "max_utts": 3, "keep_raw": False}
    assert read_spec("synthetic", {**small, **options}) == DATASETS.create("synthetic", **small, **options).spec
