"""The project's structure: data flows one way through its layers, modules form no cycle, and
nothing in the product points outside the repository.

Layers, lowest first (a module may import its own layer and the ones below):

    framework (harness/, except harness/run/) <- plugins (mcer/, baselines/, corruptions/)
        <- reports (reports/) <- run layer (harness/run/, and harness/__main__.py, its entry point)

Plugins do not import one another, and reports read the store only: they import no part of
the framework but the store, the metric table and provenance. Imports inside functions count.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "mcer", "baselines", "corruptions", "reports")
PLUGINS = ("mcer", "baselines", "corruptions")
REPORTS_MAY_IMPORT = {"harness.store", "harness.metrics", "harness.provenance"}


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The longest project module that ``name`` (a dotted import target) lies in."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in MODULES:
            return candidate
    return None


def imports_of(module: str) -> set[str]:
    """Project modules ``module`` imports anywhere in its body (functions included)."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
        for target in targets:
            resolved = _resolve(target)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def layer(module: str) -> int:
    """0 framework, 1 plugins, 2 reports, 3 run layer."""
    if module == "harness.run" or module.startswith("harness.run.") or module == "harness.__main__":
        return 3
    top = module.split(".")[0]
    if top == "reports":
        return 2
    if top in PLUGINS:
        return 1
    return 0


NAMES = ("framework", "plugins", "reports", "run layer")


def test_the_graph_is_not_empty():
    assert len(MODULES) > 60
    assert "harness.store" in GRAPH["reports.build"]
    assert "harness.run.worker" in GRAPH["harness.run.executors"]


def test_no_import_against_the_flow():
    bad = []
    for src, targets in GRAPH.items():
        for dst in targets:
            ls, ld = layer(src), layer(dst)
            if ld > ls:
                bad.append(f"{src} ({NAMES[ls]}) imports {dst} ({NAMES[ld]})")
            elif ls == ld == 1 and src.split(".")[0] != dst.split(".")[0]:
                bad.append(f"plugin {src} imports another plugin package's module {dst}")
            elif ls == 2 and ld == 0 and dst not in REPORTS_MAY_IMPORT:
                bad.append(f"{src} (reports) imports {dst}: reports read the store, they do not look up plugins "
                           f"or run models")
    assert not bad, "imports against the one-way flow:\n" + "\n".join(sorted(bad))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layer_assignment():
    assert layer("harness.runtime") == 0 and layer("harness.run.cli") == 3 and layer("harness.__main__") == 3
    assert layer("corruptions.audio") == 1 and layer("reports.build") == 2


# ------------------------------------------------------------------ self-contained project

PRODUCT_TEXT = [p for p in ROOT.glob("*.md")] + list((ROOT / "docs").rglob("*.md")) + [
    p for package in PACKAGES for p in (ROOT / package).rglob("*.py")] + list((ROOT / "configs").glob("*.toml")) + [
    ROOT / "pyproject.toml", ROOT / "noxfile.py"] + list((ROOT / "benchmarks").glob("*.py"))
OUTSIDE = re.compile(r"\.\./shared|\bshared/(DESIGN|MCER|BASELINES|DATA|METRICS)\.md|/work/")


@pytest.mark.parametrize("path", PRODUCT_TEXT, ids=[str(p.relative_to(ROOT)) for p in PRODUCT_TEXT])
def test_nothing_points_outside_the_repository(path):
    hits = [f"line {i}: {line.strip()}" for i, line in enumerate(path.read_text().splitlines(), 1)
            if OUTSIDE.search(line)]
    assert not hits, f"{path.relative_to(ROOT)} refers to files outside the repository:\n" + "\n".join(hits)


DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_link_in_the_docs_resolves_inside_the_repository(path):
    broken = []
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", path.read_text(), flags=re.S))  # links, not code
    for target in LINK.findall(prose):
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:") or target.startswith("#"):
            continue
        file_part = target.split("#", 1)[0]
        resolved = (path.parent / file_part).resolve()
        if not resolved.exists() or ROOT not in resolved.parents and resolved != ROOT:
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)} links to missing or outside files: {broken}"
