"""Item 3, bad inputs: dataset files. Valid MMSA, MulT and ERC pickles are truncated, given
wrong tuple lengths, wrong types or shapes in their slots, missing keys, NaN or out-of-range
labels; loading each either gives a sound dataset or raises DataError naming the file,
never an IndexError, KeyError, TypeError or AttributeError from inside a loader."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from fixtures_datasets import erc_tuple, mmsa_dict, mult_dict
from hypothesis import given
from hypothesis import strategies as st

from harness import DATASETS
from harness.datasets.detect import load_path
from harness.datasets.erc_pickle import LAYOUTS
from harness.errors import DataError

from ._helpers import TALLY, fuzz_settings

pytestmark = pytest.mark.faults

BASES = {
    "mmsa": lambda: mmsa_dict(), "mmsa-aligned": lambda: mmsa_dict("aligned"), "mmsa-sims": lambda: mmsa_dict("sims"),
    "mult": lambda: mult_dict(), "mult-iemocap": lambda: mult_dict(iemocap=True),
    **{f"erc-{layout}": (lambda layout=layout: erc_tuple(layout)) for layout in LAYOUTS},
}
JUNK = st.one_of(
    st.none(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=4), st.binary(max_size=4),
    st.just([]), st.just({}), st.just(()), st.lists(st.integers(-2, 9), max_size=3),
    st.sampled_from([np.zeros((0,)), np.zeros((2, 0, 3)), np.full((2, 3), np.nan), np.array(["a", "b"]),
                     np.zeros((3, 2, 2, 2)), np.array([1e40]), np.ones((1, 1), dtype=np.int64), np.array(7)]),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(-1, 3), max_size=2),
)


def _containers(obj, path=()):
    """Every (path, container) pair inside ``obj`` (dicts, lists, tuples), outermost first."""
    yield path, obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for k, v in list(items)[:6]:
        if isinstance(v, (dict, list, tuple)):
            yield from _containers(v, (*path, k))


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def _thaw(obj):
    """Tuples to lists, recursively, so any slot can be replaced (ERC files are tuples)."""
    if isinstance(obj, tuple):
        return [_thaw(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _thaw(v) for k, v in obj.items()}
    return obj


@st.composite
def broken_files(draw: st.DrawFn) -> tuple[str, bytes]:
    base = draw(st.sampled_from(sorted(BASES)))
    obj = copy.deepcopy(BASES[base]())
    top_tuple = isinstance(obj, tuple)
    obj = _thaw(obj)
    kind = draw(st.sampled_from(["slot", "slot", "delete", "length", "truncate", "nan-label"]))
    if kind == "length" and isinstance(obj, list):
        if draw(st.booleans()):
            obj.pop(draw(st.integers(0, len(obj) - 1)))
        else:
            obj.append(draw(JUNK))
    elif kind in ("slot", "delete", "nan-label"):
        places = list(_containers(obj))
        path, node = places[draw(st.integers(0, len(places) - 1))]
        keys = list(node.keys() if isinstance(node, dict) else range(len(node)))
        if keys:
            key = keys[draw(st.integers(0, len(keys) - 1))]
            if kind == "delete" and isinstance(node, dict):
                del node[key]
            elif kind == "nan-label" and isinstance(node, dict) and "regression_labels" in node:
                node["regression_labels"] = np.full_like(np.asarray(node["regression_labels"], float), np.nan)
            else:
                node[key] = draw(JUNK)
    if top_tuple:
        obj = tuple(obj) if isinstance(obj, list) else obj
    data = pickle.dumps(obj, protocol=draw(st.sampled_from([2, 4, 5])))
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    return base, data


@fuzz_settings(max_examples=300)
@given(broken_files())
def test_broken_dataset_files_load_soundly_or_fail_naming_the_file(tmp_path_factory, case):
    TALLY["fuzzed inputs"] += 1
    base, data = case
    path = tmp_path_factory.mktemp("ds") / f"{base}.pkl"
    path.write_bytes(data)
    try:
        dataset = load_path(path)
    except DataError as exc:
        assert str(path) in str(exc), str(exc)
        return
    except FileNotFoundError:  # pragma: no cover - the file is always written
        raise
    for split in ("train", "valid", "test"):
        for dlg in dataset.splits[split]:
            for u in dlg.utterances:
                for m, d in dataset.spec.dims.items():
                    x = u.features[m]
                    assert x.ndim == 2 and x.shape[0] >= 1 and x.shape[1] == d and bool(x.isfinite().all())
                if dataset.spec.task == "classification":
                    assert 0 <= u.label < dataset.spec.num_classes
                else:
                    assert np.isfinite(u.score)


@pytest.mark.parametrize("fmt", ["mmsa", "mult-pickle", "erc-pickle"])
def test_registered_loaders_name_the_file_for_other_content(tmp_path, fmt):
    for i, obj in enumerate([[], {}, "text", 3, {"train": {}}, {"train": [], "valid": [], "test": []}, (1, 2, 3)]):
        TALLY["fuzzed inputs"] += 1
        path = tmp_path / f"{fmt}-{i}.pkl"
        path.write_bytes(pickle.dumps(obj))
        with pytest.raises(DataError, match=str(path).replace(".", r"\.")):
            DATASETS.create(fmt, path=str(path))
