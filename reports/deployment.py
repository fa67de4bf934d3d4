"""The deployment table: one row per stored deployment profile (:mod:`harness.profile`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reports.latex import Table, best_mask


def _human(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def deployment_table(profiles: Sequence[dict[str, Any]], names: Sequence[str] | None = None) -> tuple[str, str]:
    """``(latex, markdown)`` table of :func:`deployment_profile` results, one row per profile
    (row names from ``names`` or each profile's ``model``); best (lowest cost / highest
    throughput) per column in bold. The last column says whether the model keeps up with live
    speech (``real_time``: p95 streaming latency below the utterance duration). A record with
    ``status = "failed"`` (as stored by a sweep) gets a row saying so, with its reason."""
    if not profiles:
        raise ValueError("deployment_table: no profiles given")
    names = list(names) if names is not None else [p.get("model", "?") for p in profiles]
    if len(names) != len(profiles):
        raise ValueError(f"deployment_table: {len(names)} names for {len(profiles)} profiles")
    cols = [("params", "Params", False, _human), ("flops_per_utt", "FLOPs/utt", False, _human),
            ("peak_mem_mb", "Peak mem (MiB)", False, lambda v: f"{v:.1f}"),
            ("latency_ms_p50", "p50 (ms)", False, lambda v: f"{v:.2f}"),
            ("latency_ms_p95", "p95 (ms)", False, lambda v: f"{v:.2f}"),
            ("latency_ms_p99", "p99 (ms)", False, lambda v: f"{v:.2f}"),
            ("throughput_utt_s", "Utt/s", True, lambda v: f"{v:.0f}"), ("rtf", "RTF", False, lambda v: f"{v:.4f}")]
    ok = [p.get("status", "ok") == "ok" for p in profiles]
    for i, p in enumerate(profiles):
        missing = [k for k, *_ in cols if k not in p]
        if ok[i] and missing:
            raise ValueError(f"deployment_table: profile {i} lacks {missing}; pass deployment_profile(...) output")
    rows, values = [], []
    for n, p, good in zip(names, profiles, ok):
        if not good:
            rows.append([n] + ["–"] * len(cols) + [f"failed: {p.get('error', '?')}"])
            values.append([float("nan")] * len(cols))
            continue
        vals = [float("nan") if p[k] is None else float(p[k]) for k, *_ in cols]
        values.append(vals)
        rt = p.get("real_time")
        rows.append([n] + ["n/a" if v != v else f(v) for v, (_, _, _, f) in zip(vals, cols)]
                    + ["n/a" if rt is None else ("yes" if rt else "no")])
    masks = [best_mask([v[j] for v in values], hi) for j, (_, _, hi, _) in enumerate(cols)]
    bold = [[False] + [m[i] for m in masks] + [False] for i in range(len(profiles))]
    devices = sorted({str(p.get("device", "?")) for p in profiles})
    methods = sorted({str(p.get("peak_mem_method")) for p, good in zip(profiles, ok) if good})
    durations = sorted({round(float(p["utterance_duration_s"]), 3) for p, good in zip(profiles, ok)
                        if good and p.get("utterance_duration_s") is not None})
    dur = f"{', '.join(f'{d:g}' for d in durations)} s" if durations else "unknown (no raw audio)"
    t = Table(["Model"] + [h for _, h, _, _ in cols] + ["Real time?"], rows, bold, caption="Deployment cost.",
              label="tab:deployment",
              note=f"Device: {', '.join(devices)}; memory: {', '.join(methods) or 'n/a'}; latency: one utterance "
                   f"appended to a growing dialogue, after warm-up; RTF = p50 latency / mean utterance duration "
                   f"({dur}); real time = p95 latency below the utterance duration.")
    return t.both()
