"""``recompute=True`` trades memory for compute and changes no result: same loss and gradients
(dropout masks replayed), fewer tensors kept for the backward pass."""

from __future__ import annotations

import pytest
import torch

from harness import MODELS
from harness.data.collate import DialogueBatch
from harness.data.types import DataSpec

SPEC = DataSpec(dims={"text": 12, "audio": 10, "video": 6}, num_classes=4, num_speakers=3)
B, N = 2, 9


pytestmark = pytest.mark.usefixtures("one_thread")


def _batch():
    g = torch.Generator().manual_seed(0)
    inputs = {m: torch.randn(B, N, d, generator=g, dtype=torch.float64) for m, d in SPEC.dims.items()}
    mask = torch.arange(N)[None, :] < torch.tensor([N, 6])[:, None]
    return DialogueBatch(inputs, mask, torch.randint(0, 3, (B, N), generator=g), torch.randint(0, 4, (B, N), generator=g),
                         None, [[""] * N] * B)


def _step(name, recompute, **options):
    torch.manual_seed(0)
    model = MODELS.create(name, SPEC, hidden=16, heads=2, window=3, recompute=recompute, **options).double().train()
    batch = _batch()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        torch.manual_seed(1)
        loss = model.loss(model(batch), batch)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return loss, grads, sum(saved)


@pytest.mark.parametrize("name,options", [("mcer", {}), ("mcer-reference", {"fusion_heads": 2}),
                                          ("mcer", {"fusion": "text-guided", "graphs": "unaware"})])
def test_recompute_gives_the_same_loss_and_gradients_with_less_kept(name, options):
    loss0, grads0, kept0 = _step(name, False, **options)
    loss1, grads1, kept1 = _step(name, True, **options)
    torch.testing.assert_close(loss1, loss0, rtol=1e-12, atol=1e-12)
    assert grads0.keys() == grads1.keys()
    for n in grads0:
        torch.testing.assert_close(grads1[n], grads0[n], rtol=1e-10, atol=1e-12, msg=n)
    assert kept1 < kept0 / 2


def test_recompute_can_be_switched_on_an_existing_model():
    model = MODELS.create("mcer", SPEC, hidden=16, heads=2)
    model.recompute = True
    assert model.graphs.recompute and model.fusion.recompute
    model.recompute = False
    assert not (model.graphs.recompute or model.fusion.recompute)


def test_recompute_option_is_checked():
    with pytest.raises(ValueError, match="recompute"):
        MODELS.create("mcer", SPEC, hidden=16, heads=2, recompute="yes")
