"""What a sweep says about its failed cells: one line per distinct error, most frequent first.

A failed cell is a result (its row is stored with the error), so a sweep with some failed
cells ends normally, with the failures summarised; a sweep whose every cell failed exits with
status 1 (:mod:`harness.run.cli`), so scripts notice.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class FailureGroup:
    """The cells that failed with one error: how many, the error as stored (``Type: message``)
    and the first such cell's model label, dataset and seed."""

    error: str
    count: int
    variant: str
    dataset: str
    seed: int


def group_failures(rows: pd.DataFrame) -> list[FailureGroup]:
    """The failed rows of ``rows`` (columns ``status``, ``error``, ``variant``, ``dataset``,
    ``seed``, ``created_at``) grouped by error: most frequent first, then in order of the first
    failure."""
    failed = rows[rows["status"] != "ok"].sort_values("created_at", kind="stable")
    errors = failed["error"].fillna("(no error recorded)").astype(str)
    groups = []
    for error, g in failed.groupby(errors, sort=False):
        first = g.iloc[0]
        groups.append(FailureGroup(str(error), len(g), str(first["variant"]), str(first["dataset"]), int(first["seed"])))
    return sorted(groups, key=lambda g: -g.count)


def failure_lines(groups: list[FailureGroup], n_cells: int) -> list[str]:
    """The run's closing words on its failures (empty when none failed)."""
    n_failed = sum(g.count for g in groups)
    if not n_failed:
        return []
    reasons = "one error" if len(groups) == 1 else f"{len(groups)} distinct errors"
    lines = [f"{n_failed} of {n_cells} cells failed, with {reasons}:"]
    for g in groups:
        lines.append(f"  {g.count} cell{'s' if g.count != 1 else ''}: {g.error} (first: model {g.variant}, dataset "
                     f"{g.dataset}, seed {g.seed})")
    return lines
