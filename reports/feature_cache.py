"""The sweep's feature cache: its size and how many extractions it ran (the ``feature_cache``
artifact a sweep stores after its grid, :func:`harness.run.post_run.record_feature_cache`)."""

from __future__ import annotations

from typing import Any

from reports.frames import Report, RunFrames, Section
from reports.latex import Table


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def feature_cache_table(summary: dict[str, Any]) -> Table:
    """One row per (dataset, extractor): clean and corrupted extractions run, the corrupted
    conditions they covered, and the entries and MiB the cache holds for it."""
    rows = [[r["dataset"], r.get("extractor_set") or "–", r["modality"], r["extractor"], str(r["clean_extractions"]),
             str(r["corrupted_extractions"]), str(r["corrupted_conditions"]), str(r["entries"]), _mib(r["bytes"])]
            for r in summary.get("extractors", [])]
    limit = "no size limit" if summary.get("max_bytes") is None else f"limit {_mib(summary['max_bytes'])} MiB"
    note = (f"The sweep's extraction cache at {summary.get('root')}: {summary.get('entries', 0)} entries, "
            f"{_mib(summary.get('bytes', 0))} MiB stored as {summary.get('dtype')} ({limit}). Extractions count "
            f"every feature tensor computed into this folder by any worker process of any run that used it: a "
            f"corrupted test set is extracted once per (corruption, severity, corruption seed) and shared by every "
            f"model and seed; a resumed run adds none for what it finds.")
    return Table(["Dataset", "Extractor set", "Modality", "Extractor", "Clean\nextractions", "Corrupted\nextractions",
                  "Corrupted\nconditions", "Entries", "MiB"], rows, caption="Feature cache.", label="tab:feature-cache",
                 align="llll" + "r" * 5, note=note)


def feature_cache_section(rep: Report, run: RunFrames) -> Section | None:
    """The feature cache table; ``None`` when the store has no summary (older runs)."""
    if not run.feature_cache:
        return None
    sec = rep.section("Feature cache")
    rep.table(sec, "feature_cache", feature_cache_table(run.feature_cache), "Feature cache: size and extractions")
    return sec
