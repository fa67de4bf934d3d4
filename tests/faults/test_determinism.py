"""Item 7, determinism: the same sweep run twice on the CPU stores identical metrics, in one
process and across processes (the CLI reference run), down to the last bit of the JSON."""

from __future__ import annotations

import pytest

from ._helpers import CELLS, assert_store_sound, connect, result_rows, sweep_data, sweep_in_process

pytestmark = pytest.mark.faults


def _metrics(db):
    with connect(db) as con:
        return sorted(con.execute("SELECT cell_key, metrics FROM results"))


def test_same_sweep_twice_gives_identical_stored_metrics(tmp_path, reference_run):
    for name in ("a", "b"):
        sweep_in_process(sweep_data(), tmp_path / name)
        assert_store_sound(tmp_path / name / "results.sqlite", CELLS)
    a, b = _metrics(tmp_path / "a" / "results.sqlite"), _metrics(tmp_path / "b" / "results.sqlite")
    assert a == b and len(a) == CELLS and all(m != "{}" for _, m in a)
    with connect(tmp_path / "a" / "results.sqlite") as con1, connect(tmp_path / "b" / "results.sqlite") as con2:
        q = "SELECT cell_key, targets, outputs FROM predictions ORDER BY cell_key"
        assert con1.execute(q).fetchall() == con2.execute(q).fetchall()  # the predictions too, byte for byte
    assert result_rows(tmp_path / "a" / "results.sqlite") == reference_run  # and the CLI run in another process
