import numpy as np

from harness.store import ResultStore


def _row(key, wf1=0.5):
    return {"cell_key": key, "train_key": "t", "model": "m", "variant": "m", "model_options": {"h": 1},
            "dataset": "d", "train_condition": "clean", "seed": 0, "corruption": "clean",
            "corruption_options": {"name": "clean"}, "severity": 0, "parameter": None, "parameter_value": None,
            "schedule": "stationary", "defense": "none", "split": "test", "status": "ok", "error": None,
            "metrics": {"wf1": wf1, "acc": 0.6}, "n_utterances": 3, "best_epoch": 2, "config_hash": "h",
            "code_version": "v", "package_versions": {"torch": "x"}, "device": "cpu", "wall_time_s": 0.1,
            "created_at": "now"}


def test_idempotent_writes_predictions_and_exports(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    preds = {"uids": ["a", "b"], "targets": np.array([0, 1]), "outputs": np.array([[0.1, 0.9], [0.8, 0.2]], dtype=np.float32)}
    assert store.add_result(_row("k1"), preds) is True
    assert store.add_result(_row("k1", wf1=0.9), preds) is False  # already stored: not overwritten
    assert store.add_result(_row("k2", wf1=0.7)) is True
    df = store.dataframe()
    assert len(df) == 2
    assert df.set_index("cell_key").loc["k1", "metric_wf1"] == 0.5
    assert df.loc[0, "package_versions"] == {"torch": "x"}
    got = store.predictions("k1")
    assert got["uids"] == ["a", "b"] and np.array_equal(got["outputs"], preds["outputs"])
    csv = store.to_csv(tmp_path / "r.csv").read_text().splitlines()
    assert len(csv) == 3 and "metric_wf1" in csv[0]
    assert store.stored_keys() == {"k1", "k2"}
