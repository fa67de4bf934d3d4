import pytest
import torch

from harness import MODELS
from harness.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from harness.runtime import seed_everything, select_device
from harness.train import DivergenceError, TrainConfig, evaluate, fit


def _train(ds, name, seed, epochs=3):
    seed_everything(seed)
    model = MODELS.create(name, ds.spec, hidden=16)
    result = fit(model, ds, TrainConfig(epochs=epochs, patience=5), seed=seed, device="cpu")
    metrics, preds = evaluate(model, ds.splits["test"], ds.spec, device="cpu")
    return result, metrics, preds


def test_same_seed_identical_metrics_different_seed_differs(tiny_dataset):
    _, m1, p1 = _train(tiny_dataset, "early-fusion", seed=0)
    _, m2, p2 = _train(tiny_dataset, "early-fusion", seed=0)
    _, m3, p3 = _train(tiny_dataset, "early-fusion", seed=1)
    assert m1 == m2
    assert (p1.outputs == p2.outputs).all()
    assert not (p1.outputs == p3.outputs).all()


def test_selection_uses_validation_and_restores_best_epoch(tiny_dataset):
    result, _, _ = _train(tiny_dataset, "text-only", seed=0, epochs=6)
    valid = [h["valid_wf1"] for h in result.history]
    assert result.best_epoch == 1 + valid.index(max(valid))
    assert result.best_valid["wf1"] == max(valid)
    assert not any(k.startswith("test") for h in result.history for k in h)


def test_regression_training_runs(tiny_regression_dataset):
    result, metrics, _ = _train(tiny_regression_dataset, "text-only", seed=0, epochs=2)
    assert result.selection_metric == "mae"
    assert {"mae", "corr", "acc2_has0", "acc7"} <= set(metrics)


def test_divergence_is_detected(tiny_dataset):
    seed_everything(0)
    model = MODELS.create("text-only", tiny_dataset.spec, hidden=8)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(DivergenceError, match="loss became nan at epoch 1"):
        fit(model, tiny_dataset, TrainConfig(epochs=1), device="cpu")


def test_checkpoint_roundtrip_and_truncation_detected(tmp_path, tiny_dataset):
    model = MODELS.create("text-only", tiny_dataset.spec, hidden=8)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model.state_dict(), {"best_epoch": 3})
    state, meta = load_checkpoint(path)
    assert meta == {"best_epoch": 3}
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="does not match its SHA-256"):
        load_checkpoint(path)


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    import hashlib
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "meta": {}, "x": Evil()}, path)
    (tmp_path / "evil.pt.sha256").write_text(hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(CheckpointError, match="cannot be loaded as weights only"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be"):
        select_device("tpu:banana")
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        seed_everything(-1)
