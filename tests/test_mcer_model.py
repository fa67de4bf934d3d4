"""Tests of the registered MCER models: parameter counts, batch invariance, shapes, ablations."""

from __future__ import annotations

import pytest
import torch

from harness import MODELS
from harness.data.collate import IGNORE_INDEX, DialogueBatch, collate_dialogues
from harness.data.types import DataSpec
from harness.registry import RegistryError
from mcer.ablation import ABLATION_SETS, variants

SPEC = DataSpec(dims={"text": 12, "audio": 10, "video": 6}, num_classes=4, num_speakers=3)
TINY = dict(hidden=16, heads=2, window=3)


pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(lengths, spec=SPEC, seed=0, dialogues=None):
    """Random dialogues; ``dialogues`` (list of per-dialogue dicts) lets tests reuse content."""
    g = torch.Generator().manual_seed(seed)
    if dialogues is None:
        dialogues = []
        for n in lengths:
            dialogues.append({
                "x": {m: torch.randn(n, d, generator=g) for m, d in spec.dims.items()},
                "spk": torch.randint(0, spec.num_speakers, (n,), generator=g),
                "y": torch.randint(0, spec.num_classes or 2, (n,), generator=g),
                "s": torch.randn(n, generator=g),
            })
    b, n = len(dialogues), max(len(d["spk"]) for d in dialogues)
    inputs = {m: torch.randn(b, n, d, generator=g) * 5 for m, d in spec.dims.items()}  # garbage padding
    mask = torch.zeros(b, n, dtype=torch.bool)
    spk = torch.zeros(b, n, dtype=torch.long)
    labels = torch.full((b, n), IGNORE_INDEX)
    scores = torch.zeros(b, n)
    for i, d in enumerate(dialogues):
        k = len(d["spk"])
        for m in spec.dims:
            inputs[m][i, :k] = d["x"][m]
        mask[i, :k], spk[i, :k], labels[i, :k], scores[i, :k] = True, d["spk"], d["y"], d["s"]
    cls = spec.task == "classification"
    return DialogueBatch(inputs, mask, spk, labels if cls else None, None if cls else scores,
                         [[f"{i}-{j}" for j in range(len(d["spk"]))] for i, d in enumerate(dialogues)]), dialogues


def test_reference_parameter_counts_exact():
    iemocap = DataSpec(dims={"text": 1024, "audio": 1582, "video": 342}, num_classes=6, num_speakers=2)
    meld = DataSpec(dims={"text": 1024, "audio": 300, "video": 342}, num_classes=7, num_speakers=9)
    assert MODELS.create("mcer-reference", iemocap, preset="iemocap").num_parameters() == 45_632_150
    assert MODELS.create("mcer-reference", meld, preset="meld").num_parameters() == 11_480_467


def test_registered_and_validates_options():
    assert MODELS.get("mcer").obj.level == "dialogue"
    assert MODELS.get("mcer-reference").obj.level == "dialogue"
    with pytest.raises(ValueError, match="denoiser"):
        MODELS.create("mcer", SPEC, denoiser="fancy")
    with pytest.raises(ValueError, match="preset"):
        MODELS.create("mcer-reference", SPEC, preset="mosi")
    with pytest.raises(RegistryError, match="hiddn"):
        MODELS.create("mcer", SPEC, hiddn=3)
    with pytest.raises(ValueError, match="lacks"):
        MODELS.create("mcer", DataSpec(dims={"text": 4}, num_classes=2))


def test_batch_composition_invariance():
    torch.manual_seed(0)
    model = MODELS.create("mcer", SPEC, **TINY).eval()
    target, dialogues = _batch([5])
    _, others = _batch([9, 1, 3], seed=1)
    mixed, _ = _batch(None, dialogues=[others[0], dialogues[0], others[1], others[2]])
    with torch.inference_mode():
        alone = model(target).prediction[0, :5]
        batched = model(mixed).prediction[1, :5]
        single = model(_batch(None, dialogues=[others[1]])[0]).prediction[0, :1]
        in_batch = model(mixed).prediction[2, :1]
    assert torch.allclose(alone, batched, atol=1e-5), (alone - batched).abs().max()
    assert torch.allclose(single, in_batch, atol=1e-5)  # a one-utterance dialogue (empty shifted map)


def test_reference_preset_is_not_batch_invariant():
    """The reference's padding leaks are reproduced (this is what ``mcer`` fixes)."""
    torch.manual_seed(0)
    model = MODELS.create("mcer", SPEC, reference_masking=True, **TINY).eval()
    target, dialogues = _batch([5])
    _, others = _batch([9], seed=1)
    mixed, _ = _batch(None, dialogues=[others[0], dialogues[0]])
    with torch.no_grad():
        assert not torch.allclose(model(target).prediction[0], model(mixed).prediction[1, :5], atol=1e-4)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_output_shapes(task):
    spec = DataSpec(dims=SPEC.dims, task=task, num_classes=4 if task == "classification" else None, num_speakers=1)
    model = MODELS.create("mcer", spec, **TINY)
    batch, _ = _batch([4, 2], spec=spec)
    out = model(batch)
    want = (2, 4, 4) if task == "classification" else (2, 4)
    assert tuple(out.prediction.shape) == want
    assert all(tuple(p.shape) == want for p in out.extras["modality_predictions"].values())
    loss = model.loss(out, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()


def test_class_weights_change_the_loss():
    torch.manual_seed(0)
    model = MODELS.create("mcer", SPEC, **TINY).eval()
    batch, _ = _batch([6, 3])
    out = model(batch)
    plain = model.loss(out, batch)
    weighted = model.loss(out, batch, class_weights=torch.tensor([5.0, 0.1, 0.1, 0.1]))
    assert not torch.allclose(plain, weighted)


def test_ablation_set_lists_full_then_each_switch():
    labels = [label for label, _ in ABLATION_SETS["mcer-ablation"]]
    assert labels[0] == "full" and len(labels) == len(set(labels))
    keys = {k for _, o in ABLATION_SETS["mcer-ablation"] for k in o}
    assert {"denoiser", "graphs", "fusion", "filter_gates", "aux_loss", "logit_weights"} <= keys
    with pytest.raises(KeyError, match="unknown ablation set"):
        variants("nope")


def _train_steps(model, batch, steps: int = 8) -> list[float]:
    """Losses of ``steps`` Adam steps (lr 3e-3) on one batch."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = model.loss(model(batch), batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("label,options", ABLATION_SETS["mcer-ablation"], ids=[v[0] for v in ABLATION_SETS["mcer-ablation"]])
def test_every_ablation_variant_trains(label, options, tiny_dataset):
    torch.manual_seed(0)
    spec = tiny_dataset.spec
    model = MODELS.create("mcer", spec, **{**TINY, "dropout": 0.0, "graph_dropout": 0.0, **options})
    losses = _train_steps(model, collate_dialogues(tiny_dataset.splits["train"][:4], spec, model.pooling))
    assert losses[-1] < losses[0] * 0.9, (label, losses)


def test_regression_trains(tiny_regression_dataset):
    torch.manual_seed(0)
    ds = tiny_regression_dataset
    model = MODELS.create("mcer", ds.spec, **TINY, dropout=0.0, graph_dropout=0.0)
    losses = _train_steps(model, collate_dialogues(ds.splits["train"][:4], ds.spec, model.pooling))
    assert losses[-1] < losses[0]


def test_fit_end_to_end(tiny_dataset):
    from harness.train import TrainConfig, evaluate, fit

    model = MODELS.create("mcer", tiny_dataset.spec, **TINY)
    fit(model, tiny_dataset, TrainConfig(epochs=2, dialogue_batch_size=4), seed=0, device="cpu")
    metrics, preds = evaluate(model, tiny_dataset.splits["test"], tiny_dataset.spec, device="cpu")
    assert len(preds.uids) == sum(len(d) for d in tiny_dataset.splits["test"])
