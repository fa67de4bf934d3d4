"""``mcer-bench data inspect PATH --json`` on a fixture of every format family."""

import json

import pytest
from fixtures_datasets import (
    csd_folder,
    erc_tuple,
    mmsa_dict,
    mult_dict,
    raw_iemocap_folder,
    raw_meld_folder,
    raw_mmsa_folder,
    write_pickle,
    write_py2,
)

from harness.run.cli import main


def _mmsa(tmp):
    return write_pickle(tmp / "MOSI" / "Processed" / "unaligned_50.pkl", mmsa_dict("unaligned"), protocol=5), "mmsa"


def _mult(tmp):
    return write_pickle(tmp / "mosi_data_noalign.pkl", mult_dict()), "mult-pickle"


def _erc(tmp):
    return write_py2(tmp / "IEMOCAP_features.pkl", erc_tuple("dialoguernn-iemocap-9")), "erc-pickle"


def _csd(tmp):
    csd_folder(tmp / "csd")
    return str(tmp / "csd"), "csd"


def _raw(builder, name, fmt):
    def make(tmp):
        builder(tmp / name)
        return str(tmp / name), fmt
    return make


@pytest.mark.parametrize("make", [_mmsa, _mult, _erc, _csd, _raw(raw_mmsa_folder, "MOSEI", "raw-mmsa"),
                                  _raw(raw_iemocap_folder, "IEMOCAP_full_release", "raw-iemocap"),
                                  _raw(raw_meld_folder, "MELD", "raw-meld")],
                         ids=["mmsa", "mult", "erc", "csd", "raw-mmsa", "raw-iemocap", "raw-meld"])
def test_data_inspect_json_on_each_format(tmp_path, monkeypatch, capsys, make):
    monkeypatch.setenv("MCER_BENCH_CACHE", str(tmp_path / "cache"))
    tmp_path.joinpath("MOSI", "Processed").mkdir(parents=True)
    path, fmt = make(tmp_path)
    assert main(["data", "inspect", path, "--json"]) == 0, capsys.readouterr().err
    card = json.loads(capsys.readouterr().out)
    assert card["format"] == fmt
    assert set(card["splits"]) == {"train", "valid", "test"}
    assert all(c["utterances"] > 0 for c in card["splits"].values())
    assert card["dims"] and all(d > 0 for d in card["dims"].values())
    assert "repairs" in card
