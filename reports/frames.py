"""What a report is made of, and what its section builders read.

:class:`Report` is the report being written (its sections and every file written so far, with
helpers that write a figure, a table or a CSV and record it); :class:`RunFrames` holds the
run's stored frames and the report's choices, :class:`DatasetFrames` one dataset's rows and the
choices made for it. The builders of :mod:`reports.sections` take them; :mod:`reports.build`
makes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reports.latex import Table


@dataclass
class Item:
    """One figure or table of the report, with what index.html and report.md say about it."""

    kind: str  # "figure" or "table"
    title: str
    caption: str
    path: str = ""  # figure: the PNG (a PDF beside it); table: the .tex (a .md beside it)
    table: Table | None = None


@dataclass
class Section:
    title: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Report:
    """The report being written: its sections and every file written so far."""

    run_dir: Path
    sections: list[Section] = field(default_factory=list)
    written: dict[str, list[str]] = field(default_factory=lambda: {"figures": [], "tables": []})

    def section(self, title: str) -> Section:
        return Section(title)

    def figure(self, section: Section, paths: list[str], title: str, caption: str) -> None:
        self.written["figures"] += paths
        section.items.append(Item("figure", title, caption, path=paths[0]))

    def table(self, section: Section, stem: str, table: Table | tuple[str, str], title: str, caption: str = "") -> None:
        tables = self.run_dir / "tables"
        tex, md = table.both() if isinstance(table, Table) else table
        (tables / f"{stem}.tex").write_text(tex)
        (tables / f"{stem}.md").write_text(md)
        self.written["tables"] += [str(tables / f"{stem}.tex"), str(tables / f"{stem}.md")]
        section.items.append(Item("table", title, caption, path=str(tables / f"{stem}.tex"),
                                  table=table if isinstance(table, Table) else None))

    def csv(self, frame: pd.DataFrame, path: Path) -> None:
        """A summary table as CSV beside the LaTeX and Markdown ones."""
        frame.to_csv(path, index=False)
        self.written["tables"].append(str(path))


@dataclass
class RunFrames:
    """Everything a section builder reads about the run: its stored frames and the report's choices."""

    run_dir: Path
    results: pd.DataFrame  # every result row (ResultStore.dataframe())
    trainings: pd.DataFrame
    cards: dict[str, dict[str, Any]]
    deployments: dict[str, dict[str, Any]]
    predictions: Callable[[str], Any]
    titles: dict[str, str]  # corruption label -> title in words, as stored with the rows
    styles: dict[str, dict[str, Any]]  # model label -> its fixed look
    full_model: str | None
    reference: str | None
    ablation_corruption: str | None
    n_boot: int
    metric: str | None = None  # the requested headline metric ([report] metric or --metric), if any
    feature_cache: dict[str, Any] = field(default_factory=dict)  # the sweep's extraction cache: size, counts
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)  # end-to-end raw-media profiles


@dataclass
class DatasetFrames:
    """One dataset's rows and the choices made for it."""

    name: str
    rows: pd.DataFrame
    ok: pd.DataFrame
    task: str
    metrics: tuple[str, ...]
    headline: str
    card: dict[str, Any]
    ablated: list[str]  # the full model's other configurations
    groups: list[list[str]]  # the full model and baselines first, then the ablation variants
