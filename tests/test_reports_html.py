"""index.html as a person sees it: rendered by headless Chromium, every figure loaded, every
table present with its rows, captions that explain, the config as TOML, provenance as a table."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from report_fixtures import make_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (Debian: apt-get install "
                                                          "chromium); index.html is not rendered")

PROBE = """<!doctype html><html><body>
<iframe id="f" style="width:1200px;height:900px" src="%s"></iframe><pre id="out">pending</pre>
<script>
document.getElementById('f').addEventListener('load', () => {
  const d = document.getElementById('f').contentDocument;
  const out = {
    images: [...d.images].map(i => ({src: i.getAttribute('src'), loaded: i.complete && i.naturalWidth > 0,
                                     width: i.getBoundingClientRect().width})),
    figures: [...d.querySelectorAll('figure')].map(f => f.querySelector('figcaption').textContent),
    tables: [...d.querySelectorAll('div.table table')].map(t => ({id: t.id, rows: t.tBodies[0].rows.length,
                                                                   head: t.tHead.rows[0].cells.length})),
    provenance: [...d.querySelectorAll('table.provenance th')].map(th => th.textContent),
    config: [...d.querySelectorAll('pre.config')].map(p => p.textContent),
    title: d.title,
  };
  document.getElementById('out').textContent = JSON.stringify(out);
});
</script></body></html>"""


def render(index: Path, tmp_path: Path) -> dict:
    """What Chromium shows of ``index``: images (loaded or not), figure captions, tables, config."""
    probe = tmp_path / "probe.html"
    probe.write_text(PROBE % index.resolve().as_uri())
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                           "--virtual-time-budget=20000", "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=180)
    dom = proc.stdout
    start = dom.index('<pre id="out">') + len('<pre id="out">')
    text = dom[start:dom.index("</pre>", start)]
    assert text != "pending", f"Chromium did not load {index}: {proc.stderr[-500:]}"
    return json.loads(text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def test_index_html_renders_every_figure_and_table(tmp_path):
    from reports.build import build_report

    run = make_run(tmp_path / "run", fail=[("text-only", 0, "audio-white", 5)])
    written = build_report(run, n_boot=100)
    page = render(run / "index.html", tmp_path)
    pngs = [str(Path(p).relative_to(run)) for p in written["figures"] if p.endswith(".png")]
    assert sorted(i["src"] for i in page["images"]) == sorted(pngs)
    assert all(i["loaded"] and i["width"] > 200 for i in page["images"]), page["images"]
    assert len(page["figures"]) == len(pngs)
    for caption in page["figures"]:  # captions explain, not file names
        assert caption.startswith("Figure ") and len(caption) > 120 and "_synthetic" not in caption
    texs = [p for p in written["tables"] if p.endswith(".tex")]
    assert len(page["tables"]) == len(texs)
    main = next(t for t in page["tables"] if t["id"] == "tab:main-synthetic")
    assert main == {"id": "tab:main-synthetic", "rows": 4, "head": 3}
    assert all(t["rows"] >= 1 for t in page["tables"])
    assert "code version" in " ".join(page["provenance"]) and "config hash" in " ".join(page["provenance"])
    assert len(page["config"]) == 1 and "[run]" in page["config"][0] and "[report]" in page["config"][0]
    assert not page["config"][0].lstrip().startswith("{")  # TOML, not a JSON dump
