"""``index.html``: the report as a page a person reads.

Sections in the order of the report (per dataset: main results, robustness, ablation,
training; then the setup), every table inline as HTML, every figure with a caption that says
what it shows and how to read it (and a link to its PDF), the configuration as TOML and the
provenance as a short table. One self-contained file with relative links; no script.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.92em;color:#333;max-width:900px}
table{border-collapse:collapse;margin:1em 0;font-size:.85em;font-variant-numeric:tabular-nums}
caption{caption-side:top;text-align:left;font-weight:600;padding-bottom:.4em;max-width:1000px}
p.note{font-size:.85em;color:#444;max-width:900px;margin-top:-.5em}
th,td{padding:.2em .6em;border-bottom:1px solid #eee;white-space:nowrap}
thead th{border-bottom:2px solid #444;vertical-align:bottom}
tr.block-end td{border-bottom:2px solid #888}
pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:.85em;max-height:30em}
.files a{margin-right:1em}nav ul{columns:2}
"""


def _provenance_rows(runs: Sequence[dict[str, Any]], df: pd.DataFrame) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for run in runs:
        prov = run.get("provenance", {})
        packages = prov.get("packages", {})
        pk = ", ".join(f"{k} {v}" for k, v in packages.items() if k in ("python", "torch", "numpy", "mcer-bench"))
        prefix = f"run {run['run_id']}" if len(runs) > 1 else "run"
        rows += [(f"{prefix}: started", str(run.get("created_at", ""))),
                 (f"{prefix}: config hash", str(run.get("config_hash", ""))),
                 (f"{prefix}: code version", str(prov.get("code_version", ""))),
                 (f"{prefix}: device", str(prov.get("device", ""))),
                 (f"{prefix}: packages", pk)]
    if "device" in df.columns:
        rows.append(("devices that computed rows", ", ".join(sorted(set(map(str, df["device"]))))))
    if "wall_time_s" in df.columns:
        rows.append(("evaluation wall time (sum)", f"{df['wall_time_s'].sum():.0f} s over {len(df)} cells"))
    return rows


def _toml(config: dict[str, Any]) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [clean(x) for x in v if x is not None]
        return v

    try:
        return tomli_w.dumps(clean(config))
    except (TypeError, ValueError):  # a value TOML cannot hold: show it as it is stored
        import json

        return json.dumps(config, indent=2)


def write_index(run_dir: Path, sections: Sequence[Any], runs: Sequence[dict[str, Any]], df: pd.DataFrame,
                title: str | None = None) -> Path:
    """Write ``run_dir/index.html`` from the report's sections (see the module doc)."""
    name = title or f"mcer-bench report: {run_dir.name}"
    n_failed = int((df["status"] != "ok").sum())
    parts = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>{html.escape(name)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(name)}</h1>",
             f"<p>{len(df)} result rows ({n_failed} failed) on {', '.join(sorted(df['dataset'].unique()))}; "
             f"{df['variant'].nunique()} models. Figures are PNG here and PDF for papers; tables are LaTeX in "
             f"<code>tables/</code>.</p>",
             "<p class='files'><a href='report.md'>report.md</a><a href='results.json'>results.json</a>"
             "<a href='results.csv'>results.csv</a><a href='results.sqlite'>results.sqlite</a></p>",
             "<nav><ul>" + "".join(f"<li><a href='#s{i}'>{html.escape(s.title)}</a></li>"
                                   for i, s in enumerate(sections))
             + "<li><a href='#config'>Configuration and provenance</a></li></ul></nav>"]
    fig_no = tab_no = 0
    for i, sec in enumerate(sections):
        parts.append(f"<section id='s{i}'><h2>{html.escape(sec.title)}</h2>")
        for item in sec.items:
            rel = Path(item.path).relative_to(run_dir)
            if item.kind == "figure":
                fig_no += 1
                pdf = rel.with_suffix(".pdf")
                parts.append(f"<figure id='fig{fig_no}'><img src='{html.escape(str(rel))}' "
                             f"alt='{html.escape(item.title)}'><figcaption><b>Figure {fig_no}. "
                             f"{html.escape(item.title)}.</b> {html.escape(item.caption)} "
                             f"(<a href='{html.escape(str(pdf))}'>PDF</a>)</figcaption></figure>")
            else:
                tab_no += 1
                parts.append(f"<div class='table' id='tab{tab_no}'><h3>Table {tab_no}. {html.escape(item.title)}</h3>")
                if item.caption:
                    parts.append(f"<p>{html.escape(item.caption)}</p>")
                if item.table is not None:
                    parts.append(item.table.html())
                else:
                    md = Path(item.path).with_suffix(".md").read_text()
                    parts.append(f"<pre>{html.escape(md)}</pre>")
                tex = rel
                parts.append(f"<p class='files'><a href='{html.escape(str(tex))}'>LaTeX</a>"
                             f"<a href='{html.escape(str(tex.with_suffix('.md')))}'>Markdown</a></p></div>")
        parts.append("</section>")
    parts.append("<section id='config'><h2>Configuration and provenance</h2>")
    prov = _provenance_rows(runs, df)
    parts.append("<table class='provenance'><caption>Provenance</caption><tbody>"
                 + "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                           for k, v in prov) + "</tbody></table>")
    for run in runs:
        label = f" (run {run['run_id']})" if len(runs) > 1 else ""
        parts.append(f"<h3>Sweep configuration{html.escape(label)}</h3>"
                     f"<pre class='config'>{html.escape(_toml(run.get('config', {})))}</pre>")
    parts.append("</section></body></html>")
    path = run_dir / "index.html"
    path.write_text("\n".join(parts) + "\n")
    return path
