"""The extractor as a sweep axis: a dataset entry's extractor sets expand into one dataset each,
rows record their set, and the report compares the models across the sets (a table of AURC per
model and extractor set, the curves faceted by set), states the feature cache's size and
extraction counts, and profiles the raw-media pipeline per stage for each set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_datasets import raw_iemocap_folder

from harness.extractors.random_models import save_audio_encoder
from harness.pipeline_profile import STAGES
from harness.run.config import ConfigError, parse_config
from harness.run.driver import run_sweep
from harness.run.plan import make_plan
from harness.store import ResultStore
from reports.build import build_report


def axis_config(iemocap: str | Path, encoder: str | Path, **extra) -> dict:
    return {
        "run": {"name": "axis", "seeds": [0]},
        "train": {"epochs": 1, "dialogue_batch_size": 2},
        "models": [{"name": "late-fusion", "options": {"hidden": 8}}, {"name": "text-only", "options": {"hidden": 8}}],
        "datasets": [{"name": "raw-iemocap", "label": "iemo", "options": {"path": str(iemocap), "keep_raw": True},
                      "extractor_sets": {
                          "egemaps": {"audio": "opensmile", "audio_options": {"feature_set": "eGeMAPSv02"}},
                          "w2v-tiny": {"audio": "audio-encoder", "audio_options": {"path": str(encoder), "device": "cpu"}},
                      }}],
        "corruptions": [{"name": "audio-white", "severities": [3, 5]}],
        "deployment": {"max_utterances": 3, "repeats": 1},
        **extra,
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("axis")
    raw_iemocap_folder(root / "iemocap")
    return root / "iemocap", save_audio_encoder(root / "w2v", "wav2vec2")


def test_extractor_sets_expand_into_one_dataset_each_and_models_follow_the_entry_label(inputs):
    iemocap, encoder = inputs
    raw = axis_config(iemocap, encoder)
    raw["models"][1]["datasets"] = ["iemo"]  # the entry's label selects every one of its sets
    cfg = parse_config(raw)
    assert [(d.shown, d.extractor_set, d.base_label) for d in cfg.datasets] == [
        ("iemo[egemaps]", "egemaps", "iemo"), ("iemo[w2v-tiny]", "w2v-tiny", "iemo")]
    assert cfg.datasets[0].options["audio_options"] == {"feature_set": "eGeMAPSv02"}
    plan = make_plan(cfg)
    assert sorted((t.label, t.dataset_shown, t.extractor_set) for t in plan.trainings) == [
        ("late-fusion", "iemo[egemaps]", "egemaps"), ("late-fusion", "iemo[w2v-tiny]", "w2v-tiny"),
        ("text-only", "iemo[egemaps]", "egemaps"), ("text-only", "iemo[w2v-tiny]", "w2v-tiny")]


@pytest.mark.parametrize("sets, expected", [
    ({"bad name": {"audio": "logmel"}}, "extractor set names are plain words"),
    ({"x": {"audoi": "logmel"}}, "key 'datasets.0[x]': dataset 'raw-iemocap' has no option 'audoi'"),
    ({"x": {"audio_options": {"feature_set": "IS11"}, "audio": "opensmile"}},
     "key 'datasets.0[x].options.audio_options.feature_set'"),
])
def test_a_bad_extractor_set_is_one_line_naming_it(inputs, sets, expected):
    iemocap, encoder = inputs
    raw = axis_config(iemocap, encoder)
    raw["datasets"][0]["extractor_sets"] = sets
    with pytest.raises(ConfigError) as err:
        parse_config(raw, source="axis.toml")
    lines = str(err.value).splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_a_sweep_over_two_extractor_sets_reports_robustness_by_extractor_the_cache_and_the_pipeline(inputs, tmp_path):
    iemocap, encoder = inputs
    raw = axis_config(iemocap, encoder)
    out = tmp_path / "run"
    summary = run_sweep(parse_config(raw), out, raw_config=raw, progress=False, log=lambda *_: None)
    assert summary.failed == 0 and summary.cells_written == 2 * 2 * 3
    rows = ResultStore(out / "results.sqlite").dataframe()
    assert sorted(set(zip(rows["dataset"], rows["extractor_set"]))) == [("iemo[egemaps]", "egemaps"),
                                                                         ("iemo[w2v-tiny]", "w2v-tiny")]
    written = build_report(out)
    table = (out / "tables" / "robustness_by_extractor_iemo.md").read_text()
    for words in ("egemaps clean", "egemaps AURC", "w2v-tiny clean", "w2v-tiny AURC", "| late-fusion |", "| text-only |"):
        assert words in table, (words, table)
    assert str(out / "figures" / "robustness_by_extractor_iemo.png") in written["figures"]
    report = (out / "report.md").read_text()
    assert "## Robustness by extractor" in report and "## Feature cache" in report

    cache = ResultStore(out / "results.sqlite").artifacts("feature_cache")["summary"]
    audio = {r["extractor_set"]: r for r in cache["extractors"] if r["modality"] == "audio"}
    n_test = int(rows["n_utterances"].iloc[0])
    for name in ("egemaps", "w2v-tiny"):  # 2 severities of one corruption, once each, for both models
        assert audio[name]["corrupted_extractions"] == 2 * n_test and audio[name]["corrupted_conditions"] == 2
        assert audio[name]["clean_extractions"] >= n_test and audio[name]["entries"] > 0
    assert audio["egemaps"]["extractor"] == "opensmile eGeMAPSv02 functionals"
    assert cache["bytes"] > 0 and cache["dtype"] == "float32"

    pipelines = ResultStore(out / "results.sqlite").artifacts("pipeline")
    assert {(p["variant"], p["extractor_set"]) for p in pipelines.values()} == {
        (m, s) for m in ("late-fusion", "text-only") for s in ("egemaps", "w2v-tiny")}
    for p in pipelines.values():
        assert p["status"] == "ok" and p["corruption"] == "audio-white" and p["severity"] == 5
        for stage in (*STAGES, "total"):
            entry = p["stages"][stage] if stage != "total" else p["total"]
            assert 0 <= entry["p50_ms"] <= entry["p95_ms"], (stage, entry)
        assert p["stages"]["decode"]["p50_ms"] > 0 and p["stages"]["extract"]["p50_ms"] > 0  # from files, really
        assert p["rtf"] >= 0 and p["peak_mem_mb"] >= 0 and p["n_utterances"] >= 1
    table = (out / "tables" / "pipeline_iemo.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| Extractor set"))
    for column in ("Extractor set", "Decode", "Corrupt", "Extract", "Model", "Total", "RTF", "Peak mem"):
        assert column in header, header
    assert table.count("| egemaps |") == 2 and table.count("| w2v-tiny |") == 2


def test_an_old_store_without_the_new_columns_still_reports(inputs, tmp_path):
    """A store written before extractor sets and extraction counts (no such columns, no
    artifacts) still opens and reports, without the new sections."""
    import sqlite3

    from report_fixtures import make_run  # a store of synthetic rows

    out = tmp_path / "old"
    make_run(out)
    with sqlite3.connect(out / "results.sqlite") as con:
        cols = {r[1] for r in con.execute("PRAGMA table_info(results)")}
    if "extractor_set" in cols:  # the fixture writes the current schema: drop the new columns
        with sqlite3.connect(out / "results.sqlite") as con:
            con.execute("ALTER TABLE results DROP COLUMN extractor_set")
            con.execute("ALTER TABLE results DROP COLUMN extraction_stats")
    build_report(out)
    report = (out / "report.md").read_text()
    assert "Robustness by extractor" not in report and "Feature cache" not in report
    assert json.loads((out / "results.json").read_text())
