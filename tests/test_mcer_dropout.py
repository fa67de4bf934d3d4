"""The MCER blocks' dropout: the distribution of ``nn.Dropout``, a bool mask, an exact gradient."""

from __future__ import annotations

import pytest
import torch

from mcer._dropout import Dropout, dropout


def test_keeps_one_minus_p_and_scales_kept_values():
    torch.manual_seed(0)
    x = torch.rand(1_000_000) + 0.5  # no zeros, so "dropped" means "output is 0"
    out = dropout(x, 0.3)
    kept = out != 0
    # Binomial(1e6, 0.7): the kept fraction's standard deviation is ~4.6e-4.
    assert abs(kept.float().mean().item() - 0.7) < 0.003
    torch.testing.assert_close(out[kept], x[kept] / 0.7)
    # Inverted dropout is unbiased: E[out] = E[x].
    assert abs(out.mean().item() - x.mean().item()) < 0.01


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(1)
    x = (torch.rand(64, 33) + 0.5).requires_grad_(True)
    out = dropout(x, 0.5)
    out.backward(torch.full_like(out, 3.0))
    expected = (out != 0).float() * 3.0 / 0.5
    assert torch.equal(x.grad, expected)


def test_same_seed_same_mask_other_seed_differs():
    x = torch.ones(10_000)
    torch.manual_seed(7)
    a = dropout(x, 0.2)
    torch.manual_seed(7)
    b = dropout(x, 0.2)
    torch.manual_seed(8)
    c = dropout(x, 0.2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_identity_in_eval_and_at_zero_rate_zeros_at_one():
    x = torch.randn(5, 7)
    layer = Dropout(0.6).eval()
    assert layer(x) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    assert "p=0.6" in repr(layer)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_rate_outside_unit_interval_is_refused(p):
    with pytest.raises(ValueError, match=f"dropout probability must be in \\[0, 1\\], got {p}"):
        Dropout(p)
    with pytest.raises(ValueError, match="dropout probability"):
        dropout(torch.ones(3), p)
