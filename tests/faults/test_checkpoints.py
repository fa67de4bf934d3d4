"""Item 1 (checkpoints) and item 4 (checkpoints carrying code): a checkpoint that is truncated,
altered, missing its digest, built for another model or carrying pickled code is never used;
the training is redone (same weights, same numbers) and its record says why."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from harness.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

from ._helpers import TALLY, Evil, assert_store_sound, connect, result_rows, sweep_data, sweep_in_process

pytestmark = pytest.mark.faults
EXTENDED = [{"name": "feature-gaussian", "severities": [2, 5, 4], "options": {"modality": "text"}}]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """The fault sweep, complete: its checkpoints are what each test attacks."""
    out = tmp_path_factory.mktemp("ckpt") / "run"
    sweep_in_process(sweep_data(), out)
    return out


@pytest.fixture(scope="module")
def extended_reference(tmp_path_factory):
    """A fresh run of the extended sweep (one more severity): the rows an attacked resume must give."""
    out = tmp_path_factory.mktemp("ckpt-ref") / "run"
    sweep_in_process(sweep_data(corruptions=EXTENDED), out)
    return result_rows(out / "results.sqlite")


def _with_digest(path, data: bytes) -> None:
    path.write_bytes(data)
    path.with_name(path.name + ".sha256").write_text(hashlib.sha256(data).hexdigest())


def _torch_bytes(obj) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _truncate(p, s):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip(p, s):
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


def _no_digest(p, s):
    p.with_name(p.name + ".sha256").unlink()


def _code(p, s):
    _with_digest(p, _torch_bytes(Evil(str(s))))


def _code_in_meta(p, s):
    state, meta = load_checkpoint(p)
    _with_digest(p, _torch_bytes({"state_dict": state, "meta": {**meta, "note": Evil(str(s))}}))


def _other_model(p, s):
    save_checkpoint(p, {"weight": torch.zeros(3)}, {"best_epoch": 1})


ATTACKS = {  # name: (attack, words the rejection names)
    "truncated": (_truncate, "SHA-256"),
    "bit-flip": (_flip, "SHA-256"),
    "digest-missing": (_no_digest, "missing"),
    "pickled-code": (_code, "weights only"),
    "pickled-code-in-meta": (_code_in_meta, "weights only"),
    "other-model": (_other_model, "state_dict"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_bad_checkpoint_is_never_used_and_training_is_redone(tmp_path, first_run, extended_reference, attack):
    out = tmp_path / "run"
    shutil.copytree(first_run, out)
    db = out / "results.sqlite"
    with connect(db) as con:
        key, rel = con.execute("SELECT train_key, checkpoint FROM trainings WHERE seed = 0").fetchone()
    sentinel = tmp_path / "SENTINEL"
    do, words = ATTACKS[attack]
    do(out / rel, sentinel)
    sweep_in_process(sweep_data(corruptions=EXTENDED), out)  # new cells need the checkpoint
    assert not sentinel.exists()
    if attack.startswith("pickled-code"):
        TALLY["malicious files refused"] += 1
    assert_store_sound(db, 8)
    assert result_rows(db) == extended_reference  # retrained: the very same numbers
    with connect(db) as con:
        fits = dict(con.execute("SELECT seed, fit FROM trainings").fetchall())
    assert words in json.loads(fits[0])["checkpoint_rejected"]
    assert "checkpoint_rejected" not in json.loads(fits[1])  # the sound checkpoint was used
    load_checkpoint(out / rel)  # replaced by a verified one


def test_load_checkpoint_refuses_pickled_code_with_a_valid_digest(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    path = tmp_path / "evil.pt"
    for payload in (Evil(str(sentinel)), {"state_dict": {"w": torch.zeros(1)}, "meta": {"x": Evil(str(sentinel))}},
                    {"state_dict": {"w": Evil(str(sentinel))}, "meta": {}}):
        _with_digest(path, _torch_bytes(payload))
        with pytest.raises(CheckpointError, match="cannot be loaded as weights only"):
            load_checkpoint(path)
        TALLY["malicious files refused"] += 1
    assert not sentinel.exists()


def test_missing_training_record_is_restored_from_the_checkpoint(tmp_path, first_run):
    """A crash between a checkpoint and its training record: the record is rebuilt, not retrained."""
    out = tmp_path / "run"
    shutil.copytree(first_run, out)
    db = out / "results.sqlite"
    with connect(db) as con:
        before = sorted(con.execute("SELECT train_key, status, fit, params FROM trainings"))
        con.execute("DELETE FROM trainings")
        con.commit()
    sweep_in_process(sweep_data(corruptions=EXTENDED), out)
    with connect(db) as con:
        after = sorted(con.execute("SELECT train_key, status, fit, params FROM trainings"))
    assert after == before
