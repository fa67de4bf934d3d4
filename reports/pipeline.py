"""End-to-end deployment of raw-media pipelines: decode -> corrupt -> extract -> model per
stage (the ``pipeline`` artifacts, :func:`harness.pipeline_profile.pipeline_profile`).

One table per dataset entry (its extractor sets together): a row per extractor set and model
(and device, when several), each stage's p50 / p95 latency per utterance, their total, the
real-time factor and the peak memory."""

from __future__ import annotations

from typing import Any

from reports.frames import Report, RunFrames, Section
from reports.latex import Table


def _base(record: dict[str, Any]) -> str:
    dataset, name = str(record.get("dataset")), record.get("extractor_set")
    return dataset[: -len(name) - 2] if name and dataset.endswith(f"[{name}]") else dataset


def pipeline_table(records: list[dict[str, Any]], dataset: str) -> Table:
    """Rows: ``records`` (one profile each); columns: extractor set, model, each stage's (in the
    order the profiles store) and the total's ``p50 / p95`` ms per utterance, RTF (p50 / p95),
    peak memory and whether it keeps up with live speech."""
    stages = next((r["stage_order"] for r in records if r.get("stage_order")), ["decode", "corrupt", "extract", "model"])
    devices = {str(r.get("device")) for r in records}
    rows = []
    for r in records:
        model = r["variant"] if len(devices) == 1 else f"{r['variant']} ({r.get('device')})"
        if r.get("status", "ok") != "ok":
            rows.append([r.get("extractor_set") or "–", model] + ["–"] * (len(stages) + 3) + [f"failed: {r.get('error')}"])
            continue
        cells = [f"{r['stages'][s]['p50_ms']:.1f} / {r['stages'][s]['p95_ms']:.1f}" for s in stages]
        cells.append(f"{r['total']['p50_ms']:.1f} / {r['total']['p95_ms']:.1f}")
        cells.append("n/a" if r.get("rtf") is None else f"{r['rtf']:.3f} / {r['rtf_p95']:.3f}")
        cells.append(f"{r['peak_mem_mb']:.1f}")
        cells.append("n/a" if r.get("real_time") is None else ("yes" if r["real_time"] else "no"))
        rows.append([r.get("extractor_set") or "–", model, *cells])
    ok = [r for r in records if r.get("status", "ok") == "ok"]
    corr = {f"{r['corruption']} at severity {r['severity']}" if r.get("corruption") else "none" for r in ok}
    n = sorted({r["n_utterances"] for r in ok})
    note = (f"Device: {', '.join(sorted(devices))}. Each utterance streamed through the whole pipeline: decoded "
            f"from its file, corrupted ({', '.join(sorted(corr)) or 'none'}), its features extracted by the extractor "
            f"set's extractors, and the model's forward pass (a dialogue-level model over the dialogue so far); "
            f"p50 / p95 ms per utterance over {', '.join(map(str, n)) or '0'} utterances after a warm-up. RTF: "
            f"processing time / audio duration, p50 / p95; real time: RTF p95 < 1. Peak memory: "
            f"{', '.join(sorted({str(r['peak_mem_method']) for r in ok})) or 'n/a'} (MiB).")
    return Table(["Extractor set", "Model", *[f"{s.capitalize()}\n(ms)" for s in stages], "Total\n(ms)",
                  "RTF", "Peak mem\n(MiB)", "Real\ntime?"], rows, caption=f"End-to-end pipeline on {dataset}.",
                 label=f"tab:pipeline-{dataset}", align="ll" + "r" * (len(stages) + 4), note=note)


def pipeline_section(rep: Report, run: RunFrames) -> Section | None:
    """One pipeline table per dataset entry; ``None`` without pipeline profiles."""
    if not run.pipelines:
        return None
    sec = rep.section("Deployment: the end-to-end raw-media pipeline")
    order = list(dict.fromkeys(run.results["variant"]))
    by_base: dict[str, list[dict[str, Any]]] = {}
    for r in run.pipelines.values():
        by_base.setdefault(_base(r), []).append(r)
    for dataset, records in sorted(by_base.items()):
        records.sort(key=lambda r: (str(r.get("extractor_set") or ""), order.index(r["variant"])
                                    if r["variant"] in order else len(order), str(r.get("device"))))
        rep.table(sec, f"pipeline_{dataset}", pipeline_table(records, dataset),
                  f"End-to-end deployment on {dataset}: decode, corrupt, extract, model")
    return sec
