"""The fidelity table: every model preset's parameter count against its reference's.

``python -m harness.run.fidelity`` prints the table; ``--write`` puts it into
``docs/BASELINES.md`` between the markers ``<!-- fidelity:start -->`` and
``<!-- fidelity:end -->``. A test checks that the committed table is what the code gives.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from harness.presets import block_params, presets_of
from harness.registry import MODELS

START, END = "<!-- fidelity:start -->", "<!-- fidelity:end -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "BASELINES.md"


def preset_fidelity(name: str, preset_name: str) -> dict[str, Any]:
    """Build ``name`` at ``preset_name`` on the preset's own spec and compare its parameter
    count (total and per reference block) with the reference's."""
    preset = presets_of(MODELS.get(name))[preset_name]
    with torch.device("meta"):  # sizes only: no memory, no initialisation time
        model = MODELS.create(name, preset.spec(), preset=preset_name)
    ours = model.num_parameters()
    blocks = block_params(model, preset) if preset.reference.blocks else {}
    ref = preset.reference
    return {"model": name, "preset": preset_name, "reference": f"{ref.repo} `{ref.path}` @ {ref.commit[:7]}",
            "reference_params": ref.params, "created_params": ref.created_params, "params": ours,
            "equal": ours == ref.params, "blocks": len(blocks),
            "blocks_equal": blocks == dict(ref.blocks) if blocks else None}


def fidelity_rows() -> list[dict[str, Any]]:
    return [preset_fidelity(name, p) for name in MODELS for p in presets_of(MODELS.get(name))]


def fidelity_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | preset | reference | reference params (used in forward) | created | ours | equal | "
             "blocks equal |", "|---|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        created = f"{r['created_params']:,}" if r["created_params"] else "same"
        blocks = "–" if r["blocks_equal"] is None else f"{'yes' if r['blocks_equal'] else 'NO'} ({r['blocks']})"
        lines.append(f"| `{r['model']}` | `{r['preset']}` | {r['reference']} | {r['reference_params']:,} | {created} | "
                     f"{r['params']:,} | {'yes' if r['equal'] else 'NO'} | {blocks} |")
    return "\n".join(lines) + "\n"


def with_table(doc: str, table: str) -> str:
    """``doc`` with the text between the fidelity markers replaced by ``table``."""
    if START not in doc or END not in doc:
        raise ValueError(f"the document has no {START} ... {END} markers")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"update the table in {DOC}")
    args = parser.parse_args(argv)
    table = fidelity_markdown(fidelity_rows())
    if args.write:
        DOC.write_text(with_table(DOC.read_text(), table))
        print(f"wrote {DOC}")
    else:
        print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
