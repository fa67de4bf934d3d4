"""nox sessions: tests, demo, lint, bench, paper. Each installs the package with constraints.txt,
which pins torch==2.13.0 (a newer or unpinned torch pulls a multi-GB CUDA build here)."""

from __future__ import annotations

import glob
import shutil

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
PYTHON = "3.11"
CONSTRAINTS = ("-c", "constraints.txt")


def _install(session: nox.Session, extras: str) -> None:
    session.install(*CONSTRAINTS, "torch==2.13.0")
    session.install(*CONSTRAINTS, "-e", f".[{extras}]" if extras else ".")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The full test suite (fault-injection tests included)."""
    _install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: the built-in demo sweep on the synthetic dataset, then its report."""
    _install(session, "")
    session.run("mcer-bench", "run", "--out", "runs/demo", "--resume", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", "harness", "mcer", "baselines", "corruptions", "reports", "tests", "benchmarks")


def _supported(posargs: list[str], help_text: str) -> list[str]:
    """The options of ``posargs`` (each ``--name`` with its value, if any) that a script's
    ``--help`` lists; e.g. ``--device cuda`` goes to the scripts that take a device only."""
    kept: list[str] = []
    i = 0
    while i < len(posargs):
        arg = posargs[i]
        name = arg.split("=", 1)[0]
        has_value = "=" not in arg and i + 1 < len(posargs) and not posargs[i + 1].startswith("--")
        if not name.startswith("--") or name in help_text:
            kept += posargs[i:i + 1 + has_value]
        i += 1 + has_value
    return kept


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Every benchmarks/bench_*.py script; tables printed and saved as CSV under bench-results/.

    Options after ``--`` go to the scripts that accept them: ``nox -s bench -- --device cuda``
    runs the MCER and corruption benchmarks on the GPU and the CPU-only ones as usual.
    """
    _install(session, "bench")
    for script in sorted(glob.glob("benchmarks/bench_*.py")):
        help_text = session.run("python", script, "--help", silent=True) or ""
        session.run("python", script, "--out", "bench-results", *_supported(list(session.posargs), help_text))


@nox.session(python=PYTHON)
def paper(session: nox.Session) -> None:
    """Compile every generated LaTeX table in a two-column test document (IEEEtran's 516 pt /
    252 pt geometry) and fail on an overfull box over 1 pt or a float too large for the page.

    ``nox -s paper -- RUN_DIR...`` checks those run directories' tables; without arguments it
    builds demo-sized reports (21 models; classification, MOSI-like regression, IEMOCAP-like)
    from the test fixtures and checks theirs. Skipped, saying so, where TeX is not installed."""
    if shutil.which("pdflatex") is None:
        session.skip("pdflatex not found: no TeX here (Debian: apt-get install texlive-latex-base "
                     "texlive-latex-recommended); nothing was compiled")
    _install(session, "test")
    dirs = list(session.posargs)
    if not dirs:
        out = f"{session.create_tmp()}/paper-fixtures"
        session.run("python", "tests/report_fixtures.py", out)
        dirs = [f"{out}/classification", f"{out}/mosi", f"{out}/iemocap"]
    session.run("python", "-m", "reports.texcheck", *dirs)
