"""Descriptive tables: the corruptions' severity levels and the dataset cards, from the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.store import CLEAN
from reports.latex import Table


def severity_table(df: pd.DataFrame) -> Table:
    """Corruption, physical parameter and its value at each severity that ran, from the stored
    rows alone (each row carries ``parameter`` and ``parameter_value``). Corruptions are named
    as registered (``corruption_options["name"]``), once each even when several entries used
    them; severities no entry ran show "–"; severity 0 is the clean cell."""
    need = {"corruption", "corruption_options", "severity", "parameter", "parameter_value"}
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"severity_table: the rows lack columns {sorted(missing)} (pass ResultStore.dataframe())")
    rows_in = df[df["corruption"] != CLEAN]
    if rows_in.empty:
        raise ValueError("severity_table: no corrupted cells in the results")
    names = [o.get("name", c) if isinstance(o, dict) else c for c, o in zip(rows_in["corruption"],
                                                                              rows_in["corruption_options"])]
    rows_in = rows_in.assign(registered=names)
    severities = sorted(int(x) for x in rows_in["severity"].unique())
    rows = []
    for name, g in rows_in.groupby("registered", sort=True):
        values = {int(r.severity): str(r.parameter_value) for r in g.itertuples() if isinstance(r.parameter_value, str)}
        parameter = next((str(x) for x in g["parameter"] if isinstance(x, str)), "–")
        rows.append([str(name), parameter, "clean"] + [values.get(sev, "–") for sev in severities])
    header = ["Corruption", "Parameter", "0"] + [str(sev) for sev in severities]
    t = Table(header, rows, align="ll" + "r" * (len(header) - 2), caption="Severity levels of the corruptions.",
              label="tab:severities", note="Severity 0 is the clean input; values as stored with the results.")
    return t


# ------------------------------------------------------------------------------------ dataset cards

def dataset_cards_table(summaries: Sequence[Mapping[str, Any]]) -> Table:
    """One row per dataset from ``BenchDataset.summary()``: task, classes, speakers, dialogues and
    utterances per split, modalities with feature dimensions."""
    rows = []
    for i, s in enumerate(summaries):
        for key in ("name", "spec", "splits"):
            if key not in s:
                raise ValueError(f"dataset_cards_table: summary {i} lacks key {key!r} (pass BenchDataset.summary())")
        spec, splits = s["spec"], s["splits"]
        task = spec.get("task", "?")
        classes = str(spec.get("num_classes") or "–") if task == "classification" else "–"
        counts = [f"{splits.get(x, {}).get('dialogues', 0)} / {splits.get(x, {}).get('utterances', 0)}"
                  for x in ("train", "valid", "test")]
        mods = ", ".join(f"{m} ({d})" for m, d in spec.get("dims", {}).items())
        rows.append([s["name"], task, classes, str(spec.get("num_speakers") or "–")] + counts + [mods])
    if not rows:
        raise ValueError("dataset_cards_table: no dataset summaries given")
    header = ["Dataset", "Task", "Classes", "Speakers", "Train", "Valid", "Test", "Modalities (dim)"]
    t = Table(header, rows, align="llrrrrrl", caption="Datasets.", label="tab:datasets",
              note="Split sizes as dialogues / utterances.")
    return t
