"""Compile generated LaTeX tables in a two-column test document and report what does not fit.

Each ``.tex`` table is typeset alone with ``pdflatex`` in a document with the page geometry of
a two-column paper (IEEEtran: ``\\textwidth`` 516 pt, ``\\columnwidth`` 252 pt, Computer
Modern at 10 pt, which is wider than the Times of IEEEtran and the Libertine of acmart, so a
table that fits here fits there). A table fails on any LaTeX error, any overfull box wider than
:data:`TOLERANCE_PT`, or a float too large for the page.

``python -m reports.texcheck PATH...`` checks every ``tables/*.tex`` under each run directory
(or each ``.tex`` file) given, prints one line per table and exits 1 when one fails, 0 when all
fit, and 2 when ``pdflatex`` is not installed. ``nox -s paper`` runs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

TOLERANCE_PT = 1.0
DOCUMENT = r"""\documentclass[10pt,twocolumn]{article}
\usepackage[letterpaper,textwidth=516pt,columnsep=12pt,textheight=9.25in]{geometry}
\usepackage[T1]{fontenc}
\usepackage{booktabs}
\begin{document}
\input{%s}
\end{document}
"""
_OVERFULL = re.compile(r"Overfull \\[hv]box \(([\d.]+)pt too (wide|high)\)")
_FLOAT = re.compile(r"Float too large for page by ([\d.]+)pt")


@dataclass
class TexResult:
    path: Path
    ok: bool
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.path}" + (f": {'; '.join(self.problems)}" if self.problems else "")


def pdflatex() -> str | None:
    """The ``pdflatex`` executable, or None when TeX is not installed."""
    return shutil.which("pdflatex")


def check_log(log: str) -> list[str]:
    """Problems found in a pdflatex log: errors, overfull boxes over the tolerance, floats too large."""
    problems = []
    for line in log.splitlines():
        if line.startswith("! "):
            problems.append(f"LaTeX error: {line[2:].strip()}")
    for amount, kind in _OVERFULL.findall(log):
        if float(amount) > TOLERANCE_PT:
            problems.append(f"overfull box, {amount} pt too {kind}")
    for amount in _FLOAT.findall(log):
        problems.append(f"float too large for the page by {amount} pt")
    return problems


def check_table(tex_path: str | Path, timeout_s: float = 60.0) -> TexResult:
    """Typeset ``tex_path`` in the test document (see the module doc) and return the problems."""
    exe = pdflatex()
    if exe is None:
        raise FileNotFoundError("pdflatex is not installed (Debian: texlive-latex-base texlive-latex-recommended)")
    tex_path = Path(tex_path).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        doc = Path(tmp) / "paper.tex"
        shutil.copy(tex_path, Path(tmp) / "table.tex")
        doc.write_text(DOCUMENT % "table.tex")
        try:
            proc = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp,
                                  capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return TexResult(tex_path, False, [f"pdflatex did not finish in {timeout_s:g} s"])
        log_path = Path(tmp) / "paper.log"
        log = log_path.read_text(errors="replace") if log_path.exists() else proc.stdout
        problems = check_log(log)
        if proc.returncode != 0 and not problems:
            problems.append(f"pdflatex exited {proc.returncode}")
    return TexResult(tex_path, not problems, problems)


def tables_under(paths: Sequence[str | Path]) -> list[Path]:
    """Every ``.tex`` file given, and every ``tables/*.tex`` of each run directory given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted((p / "tables").glob("*.tex")) if (p / "tables").is_dir() else sorted(p.glob("*.tex"))
            if not found:
                raise FileNotFoundError(f"{p} holds no tables/*.tex: is it a run directory with a report?")
            out += found
        elif p.suffix == ".tex" and p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p} is neither a run directory nor a .tex file")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m reports.texcheck RUN_DIR_OR_TEX...", file=sys.stderr)
        return 2
    if pdflatex() is None:
        print("texcheck: pdflatex is not installed; nothing was compiled", file=sys.stderr)
        return 2
    results = [check_table(p) for p in tables_under(args)]
    for r in results:
        print(r.line())
    bad = [r for r in results if not r.ok]
    print(f"{len(results) - len(bad)} passed, {len(bad)} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
