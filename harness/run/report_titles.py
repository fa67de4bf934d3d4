"""Corruption titles for a store whose rows do not hold them (written before rows stored them).

A report reads each corruption's title from its result rows (``title``). For an older store
the run layer, which may look plugins up, names each label as the sweep would have stored it,
from the registered name and options the rows do hold; a name no longer registered keeps its
label.
"""

from __future__ import annotations

from pathlib import Path

from harness.registry import CORRUPTIONS, RegistryError
from harness.store import CLEAN, ResultStore


def registered_titles(db: str | Path) -> dict[str, str]:
    """``label -> title`` for every corruption label of store ``db`` (opened read-only)."""
    df = ResultStore(db, read_only=True).dataframe()
    out: dict[str, str] = {}
    for label, options in zip(df.get("corruption", []), df.get("corruption_options", [])):
        if label == CLEAN or label in out or not isinstance(options, dict):
            continue
        options = dict(options)
        try:
            entry = CORRUPTIONS.get(str(options.pop("name", label)))
        except RegistryError:
            continue
        out[label] = entry.obj.display_title(label, options)
    return out
