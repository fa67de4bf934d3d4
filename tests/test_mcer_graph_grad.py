"""The graph stage's relation term: the atomic-free gradient equals the indexing gradient.

Run on the CPU always and on CUDA where present (the CUDA cases skip with a reason elsewhere).
"""

from __future__ import annotations

import pytest
import torch

from mcer.graph import GraphAttentionLayer, SpeakerGraphs, relation_bias, sum_per_relation

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="CUDA not available"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_relation_bias_gradient_equals_indexing_gradient(device, dtype):
    g = torch.Generator().manual_seed(0)
    for trial in range(5):
        table = torch.randn(6, generator=g, dtype=dtype).to(device).requires_grad_()
        rel = torch.randint(0, 6, (3, 17, 17), generator=g).to(device)
        if trial == 0:
            rel[rel == 4] = 2  # a relation that never occurs gets a zero gradient
        upstream = torch.randn(3, 17, 17, generator=g, dtype=dtype).to(device)
        new = relation_bias(table, rel)
        old = table[rel]
        assert torch.equal(new, old)  # the forward is the same lookup
        (g_new,) = torch.autograd.grad(new, table, upstream)
        (g_old,) = torch.autograd.grad(old, table, upstream)
        tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(g_new, g_old, **tol)
        if trial == 0:
            assert g_new[4] == 0


@pytest.mark.parametrize("device", DEVICES)
def test_graph_stage_gradients_equal_the_indexing_form(device, monkeypatch):
    """Whole graph stage (2 RGAT blocks, shared relation embedding): parameters' gradients with
    the new relation term equal those of ``table[relations]`` autograd (float64, tight)."""
    torch.manual_seed(0)
    stage = SpeakerGraphs(8, "both", window=3, dropout=0.0).to(device=device, dtype=torch.float64).train()
    x = torch.randn(2, 9, 8, dtype=torch.float64, device=device)
    spk = torch.randint(0, 2, (2, 9), device=device)
    mask = torch.arange(9, device=device)[None, :] < torch.tensor([9, 6], device=device)[:, None]

    def grads():
        stage.zero_grad(set_to_none=True)
        stage(x, spk, mask).pow(2).sum().backward()
        return {n: p.grad.clone() for n, p in stage.named_parameters()}

    new = grads()
    monkeypatch.setattr("mcer.graph.relation_bias", lambda table, rel: table[rel])
    old = grads()
    assert new.keys() == old.keys()
    assert new["relation_embedding.weight"].abs().sum() > 0
    for name in new:
        torch.testing.assert_close(new[name], old[name], rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["scatter", "one-hot"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_both_summation_forms_equal_the_indexing_gradient(device, method, dtype):
    """The CPU form (scatter) and the accelerator form (one-hot product), each on every device."""
    g = torch.Generator().manual_seed(3)
    rel = torch.randint(0, 6, (4, 23, 23), generator=g).to(device)
    upstream = torch.randn(4, 23, 23, generator=g, dtype=torch.float64)
    table = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    (want,) = torch.autograd.grad(table[rel.cpu()], table, upstream)  # float64 reference
    got = sum_per_relation(upstream.to(device=device, dtype=dtype), rel, 6, method)
    assert got.dtype == dtype and got.shape == (6,)
    # bf16: the inputs are rounded to bf16 and so is the sum (spacing 0.25 near 50), not the accumulation
    rtol, atol = {torch.float64: (1e-12, 1e-12), torch.float32: (1e-5, 1e-4), torch.bfloat16: (1e-2, 0.25)}[dtype]
    torch.testing.assert_close(got.double().cpu(), want, rtol=rtol, atol=atol)


def test_summation_form_is_checked():
    with pytest.raises(ValueError, match="method"):
        sum_per_relation(torch.zeros(3), torch.zeros(3, dtype=torch.long), 6, "atomic")


def test_gat_layer_forward_unchanged_by_the_edge_argument():
    torch.manual_seed(1)
    emb = torch.nn.Embedding(6, 10)
    layer = GraphAttentionLayer(6, 5, dropout=0.0, relation_embedding=emb).eval()
    h = torch.randn(2, 7, 6)
    rel = torch.randint(0, 6, (2, 7, 7))
    rel[1, 3] = 0  # a row with no edge: zero attention
    assert torch.equal(layer(h, rel), layer(h, rel, rel > 0))
