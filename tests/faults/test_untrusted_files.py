"""Item 4, untrusted files: malicious pickles against every pickle entry point, path traversal
in dataset folders, and hostile names that would become file names. Each attack aims at a
sentinel file that must never appear; every refusal is counted in the suite summary."""

from __future__ import annotations

import os
import pickle
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from fixtures_datasets import poisoned_dataset_objects, raw_iemocap_folder, raw_mmsa_folder

from harness import DATASETS
from harness.datasets.detect import detect_format, load_path
from harness.datasets.safe_pickle import safe_load, safe_loads
from harness.errors import DataError

from ._helpers import TALLY, Evil, env

pytestmark = pytest.mark.faults

# (module, name, args): callables outside the allow-list, each aimed at the sentinel ({s})
GADGETS = [
    ("os", "system", ("touch {s}",)),
    ("posix", "system", ("touch {s}",)),
    ("subprocess", "Popen", (["touch", "{s}"],)),
    ("subprocess", "check_call", (["touch", "{s}"],)),
    ("builtins", "eval", ("open('{s}', 'w')",)),
    ("builtins", "exec", ("open('{s}', 'w')",)),
    ("__builtin__", "eval", ("open('{s}', 'w')",)),
    ("builtins", "open", ("{s}", "w")),
    ("builtins", "getattr", ("{s}", "join")),  # first link of a getattr(__import__('os'), ...) chain
    ("builtins", "__import__", ("os",)),
    ("importlib", "import_module", ("os",)),
    ("pickle", "loads", ("{s}",)),
    ("pathlib", "Path", ("{s}",)),  # harmless class, still outside the allow-list
    ("shutil", "rmtree", ("{s}",)),
    ("numpy", "load", ("{s}",)),  # allow_pickle is a keyword away
    ("numpy.testing._private.utils", "runstring", ("open('{s}', 'w')", {})),
    ("torch", "load", ("{s}",)),
    ("runpy", "run_path", ("{s}",)),
]
WRAPS = ("bare", "tuple", "dict-value", "list")


def _text(x: str, protocol: int) -> bytes:
    b = x.encode()
    return b"V" + x.encode("raw_unicode_escape") + b"\n" if protocol == 0 else b"X" + struct.pack("<I", len(b)) + b


def _arg(x, protocol: int) -> bytes:
    if isinstance(x, str):
        return _text(x, protocol)
    if isinstance(x, list):
        return b"(" + b"".join(_arg(v, protocol) for v in x) + b"l"
    if isinstance(x, dict):
        return b"(d"
    raise TypeError(type(x))


def craft(module: str, name: str, args: tuple, protocol: int, wrap: str = "bare") -> bytes:
    """A pickle whose load calls ``module.name(*args)``: GLOBAL (protocols 0-3) or STACK_GLOBAL (4-5)."""
    head = b"" if protocol < 2 else b"\x80" + bytes([protocol])
    if protocol >= 4:
        ref = _text(module, 1) + _text(name, 1) + b"\x93"
    else:
        ref = b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    call = ref + b"(" + b"".join(_arg(a, protocol) for a in args) + b"tR"
    body = {"bare": call, "tuple": b"(" + _text("x", protocol) + call + b"t",
            "dict-value": b"(d" + _text("train", protocol) + call + b"s",
            "list": b"(l" + call + b"a"}[wrap]
    return head + body + b"."


def test_crafted_pickles_are_real_pickles():
    """The crafting is sound: with a harmless callable, plain pickle.loads runs it."""
    for protocol in range(6):
        assert pickle.loads(craft("builtins", "len", ("abcd",), protocol)) == 4
        assert pickle.loads(craft("builtins", "len", ("ab",), protocol, "dict-value")) == {"train": 2}


@pytest.mark.parametrize("protocol", range(6))
def test_every_gadget_at_every_protocol_is_refused_by_safe_loads(tmp_path, protocol):
    sentinel = tmp_path / "SENTINEL"
    for module, name, args in GADGETS:
        args = tuple(a.format(s=sentinel) if isinstance(a, str) else
                     [v.format(s=sentinel) for v in a] if isinstance(a, list) else a for a in args)
        for wrap in WRAPS:
            data = craft(module, name, args, protocol, wrap)
            with pytest.raises(DataError, match=f"blocked global {module}.{name}"):
                safe_loads(data, "crafted.pkl")
            TALLY["malicious files refused"] += 1
    assert not sentinel.exists()


def _real_attacks(sentinel) -> dict[str, object]:
    """Objects whose pickling (by Python's own pickler) carries the attack, nested as data files nest."""
    evil = Evil(str(sentinel))
    obj_array = np.array([1, evil, 3], dtype=object)
    return {**poisoned_dataset_objects(evil), "object-array": {"train": {"text": obj_array}},
            "dict-key": {("k", 1): {"deep": [evil]}}, "set": {"train": {frozenset([1]), 2}, "x": [evil]}}


@pytest.mark.parametrize("protocol", range(6))
def test_malicious_dataset_files_are_refused_by_every_entry_point(tmp_path, protocol):
    sentinel = tmp_path / "SENTINEL"
    entry_points = {
        "safe_load": safe_load, "load_path": load_path, "detect_format": detect_format,
        "mmsa": lambda p: DATASETS.create("mmsa", path=str(p)),
        "mult-pickle": lambda p: DATASETS.create("mult-pickle", path=str(p)),
        "erc-pickle": lambda p: DATASETS.create("erc-pickle", path=str(p)),
    }
    for name, obj in _real_attacks(sentinel).items():
        path = tmp_path / f"{name}.pkl"
        try:
            path.write_bytes(pickle.dumps(obj, protocol=protocol))
        except pickle.PicklingError:  # noqa: PERF203 - e.g. an object array at protocol 0
            continue
        for load in entry_points.values():
            with pytest.raises(DataError, match=r"blocked global (posix|os)\.system"):
                load(path)
            TALLY["malicious files refused"] += 1
    assert not sentinel.exists()


def test_cli_data_inspect_refuses_a_malicious_file_without_a_traceback(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    path = tmp_path / "IEMOCAP_features.pkl"
    path.write_bytes(pickle.dumps(_real_attacks(sentinel)["erc"], protocol=2))
    done = subprocess.run([sys.executable, "-m", "harness", "data", "inspect", str(path)], capture_output=True,
                          text=True, timeout=120, env=env(), cwd=tmp_path)
    assert done.returncode == 2 and "blocked global" in done.stderr and "Traceback" not in done.stderr
    assert not sentinel.exists()
    TALLY["malicious files refused"] += 1


# ------------------------------------------------------------------ path traversal


def _outside_clip(tmp_path, root) -> str:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    clip = next(root.rglob("*.mp4"), None) or next(root.rglob("*.wav"))
    target = outside / clip.name
    shutil.copy(clip, target)
    return str(target)


def test_raw_mmsa_ids_with_dotdot_are_refused(tmp_path):
    root = tmp_path / "MOSI"
    raw_mmsa_folder(root)
    _outside_clip(tmp_path, root)
    label = root / "label.csv"
    lines = label.read_text().splitlines()
    head, first = lines[0].split(","), lines[1].split(",")
    first[head.index("video_id")] = "../../outside"
    first[head.index("clip_id")] = next((tmp_path / "outside").iterdir()).stem
    label.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    with pytest.raises(DataError, match="outside the dataset folder"):
        DATASETS.create("raw-mmsa", path=str(root), cache_dir=str(tmp_path / "cache"))
    TALLY["malicious files refused"] += 1


def test_raw_mmsa_symlink_leading_out_of_the_folder_is_refused(tmp_path):
    root = tmp_path / "MOSI"
    raw_mmsa_folder(root)
    target = _outside_clip(tmp_path, root)
    clip = next(root.rglob("*.mp4"))
    clip.unlink()
    clip.symlink_to(target)
    with pytest.raises(DataError, match="symlink leading out"):
        DATASETS.create("raw-mmsa", path=str(root), cache_dir=str(tmp_path / "cache"), missing="skip")
    TALLY["malicious files refused"] += 1
    # a symlink that stays inside the folder is fine
    clip.unlink()
    shutil.copy(target, clip.with_name("real.bin"))
    clip.symlink_to(clip.with_name("real.bin"))
    assert DATASETS.create("raw-mmsa", path=str(root), cache_dir=str(tmp_path / "cache"), video=None).spec


def test_raw_iemocap_utterance_id_with_dotdot_is_refused(tmp_path):
    root = tmp_path / "IEMOCAP_full_release"
    raw_iemocap_folder(root)
    ev = next(root.rglob("EmoEvaluation/*.txt"))
    text = ev.read_text()
    uid = next(line.split("\t")[1] for line in text.splitlines()
               if line.startswith("[") and line.split("\t")[2] in ("hap", "sad", "neu", "ang", "exc", "fru"))
    evil = "../../../../../outside/" + uid
    ev.write_text(text.replace(uid, evil, 1))
    tr = ev.parent.parent / "transcriptions" / ev.name
    tr.write_text(tr.read_text().replace(uid, evil, 1))
    with pytest.raises(DataError, match="outside the dataset folder"):
        DATASETS.create("raw-iemocap", path=str(root), cache_dir=str(tmp_path / "cache"), missing="skip")
    TALLY["malicious files refused"] += 1


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "/abs", "x\\..\\y"])
def test_run_name_cannot_place_the_run_outside_runs(tmp_path, name):
    from harness.run.config import ConfigError, parse_config

    from ._helpers import sweep_data

    data = sweep_data()
    data["run"]["name"] = name
    with pytest.raises(ConfigError, match="key 'run.name'"):
        parse_config(data)
    TALLY["malicious files refused"] += 1


def test_cli_refuses_a_traversing_run_name_and_writes_nothing(tmp_path):
    from ._helpers import write_sweep

    cfg = write_sweep(tmp_path / "sweep.toml")
    cfg.write_text(cfg.read_text().replace('name = "faults"', 'name = "../../escaped"', 1))
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(cfg), "--quiet", "--no-report"],
                          capture_output=True, text=True, timeout=120, env=env(), cwd=work)
    assert done.returncode == 2 and "run.name" in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["a", "sweep.toml"] and os.listdir(work) == []
    TALLY["malicious files refused"] += 1


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "x\0"])
def test_plugin_names_that_would_be_paths_are_refused(name):
    from harness.registry import Registry

    with pytest.raises(ValueError, match="'/'"):
        Registry("model").register(name)


def test_report_from_a_store_with_hostile_names_writes_nothing_outside_the_run(tmp_path):
    """Labels reach file names only through registry names, which refuse paths; a doctored
    store with '..' labels still cannot make the report write outside its run directory."""
    from reports.build import build_report

    from ._helpers import sweep_data, sweep_in_process

    run = tmp_path / "deep" / "run"
    sweep_in_process(sweep_data(seeds=(0,)), run)
    with connect_db(run / "results.sqlite") as con:
        con.execute("UPDATE results SET dataset = '../../../escaped', variant = '../../v', "
                    "corruption = CASE corruption WHEN 'clean' THEN 'clean' ELSE '../c' END")
        con.commit()
    before = {p for p in tmp_path.rglob("*") if run not in p.parents and p != run}
    try:
        build_report(run)
    except (OSError, ValueError, KeyError) as exc:  # refusing is fine; writing outside is not
        assert "escaped" in str(exc) or isinstance(exc, (ValueError, KeyError))
    after = {p for p in tmp_path.rglob("*") if run not in p.parents and p != run}
    assert after == before
    TALLY["malicious files refused"] += 1


def connect_db(db):
    import sqlite3
    from contextlib import closing

    return closing(sqlite3.connect(db))
