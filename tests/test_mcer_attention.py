"""The recomputing attention core equals the op-by-op formula, values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.layers import masked_softmax
from mcer._dropout import dropout
from mcer.attention import attend, recomputation, recompute_default

pytestmark = pytest.mark.usefixtures("one_thread")


def op_by_op(q, k, v, keys, scale, p, training, shift, keys2):
    """The formula as the blocks computed it before the core existed (autograd through every op)."""
    scores = q @ k.transpose(-2, -1) * scale
    a1 = masked_softmax(scores, keys)
    if shift is None:
        return dropout(a1, p, training) @ v
    shifted = torch.roll(scores, 1, dims=-1) if shift == "cyclic" else F.pad(scores[..., :-1], (1, 0))
    return dropout(a1 - masked_softmax(shifted, keys2), p, training) @ v


def _inputs(dtype, seed=0, b=2, h=3, n=5, d=4):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n, d, generator=g, dtype=dtype, requires_grad=True) for _ in range(3))
    mask = torch.arange(n)[None, :] < torch.tensor([n, 3])[:, None]
    return q, k, v, mask


CASES = [(None, 0.0), (None, 0.4), ("pad", 0.0), ("pad", 0.5), ("cyclic", 0.0), ("cyclic", 0.3)]


@pytest.mark.parametrize("recompute", [True, False])
@pytest.mark.parametrize("shift,p", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_core_equals_op_by_op_values_and_gradients(shift, p, dtype, recompute):
    q, k, v, mask = _inputs(dtype)
    keys = mask[:, None, None, :]
    keys2 = None
    if shift == "pad":
        prev = torch.zeros_like(mask)
        prev[:, 1:] = mask[:, :-1]
        keys2 = (mask & prev)[:, None, None, :]
    elif shift == "cyclic":
        keys2 = keys
    gout = torch.randn(q.shape, generator=torch.Generator().manual_seed(9), dtype=dtype)
    results = []
    for fn in (op_by_op, attend):
        torch.manual_seed(123)  # the same dropout draw for both
        extra = {"recompute": recompute} if fn is attend else {}
        out = fn(q, k, v, keys, 0.7, p, True, shift, keys2, **extra)
        grads = torch.autograd.grad(out, (q, k, v), gout)
        results.append((out, *grads))
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, **tol)


def test_core_rows_without_keys_are_zero_and_get_no_gradient():
    q, k, v, _ = _inputs(torch.float64)
    keys = torch.zeros(2, 1, 1, 5, dtype=torch.bool)
    keys[0, ..., :2] = True  # dialogue 1 has no valid key at all
    out = attend(q, k, v, keys, 0.5)
    assert torch.all(out[1] == 0)
    dq, dk = torch.autograd.grad(out.sum(), (q, k))
    assert torch.all(dq[1] == 0) and torch.all(dk[1] == 0)
    assert torch.all(dk[0, :, 2:] == 0)  # masked keys get no gradient


def test_core_without_grad_and_in_eval_matches():
    q, k, v, mask = _inputs(torch.float32)
    keys = mask[:, None, None, :]
    with torch.no_grad():
        a = attend(q, k, v, keys, 0.5, dropout=0.5, training=False, shift="pad", keys2=keys)
    b = attend(q, k, v, keys, 0.5, dropout=0.5, training=False, shift="pad", keys2=keys)
    assert torch.equal(a, b)


def test_core_saves_no_map_for_backward():
    """Only q, k, v, the masks and the bool dropout mask are kept: no [B, h, N, N] float map."""
    q, k, v, mask = _inputs(torch.float32, n=7)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        attend(q, k, v, mask[:, None, None, :], 0.5, dropout=0.2, training=True, shift="cyclic",
               keys2=mask[:, None, None, :], recompute=True)
    float_maps = [t for t in saved if t.is_floating_point() and t.shape[-2:] == (7, 7)]
    assert float_maps == []
    assert any(t.dtype == torch.bool and t.shape[-2:] == (7, 7) for t in saved)


def test_recompute_default_is_the_cpu_only_unless_overridden():
    assert recompute_default(torch.device("cpu")) is True
    assert recompute_default(torch.device("meta")) is False
    with recomputation(False):
        assert recompute_default(torch.device("cpu")) is False
        with recomputation(None):
            assert recompute_default(torch.device("cpu")) is True
    assert recompute_default(torch.device("cpu")) is True


def test_core_rejects_bad_arguments():
    q, k, v, _ = _inputs(torch.float32)
    with pytest.raises(ValueError, match="shift"):
        attend(q, k, v, None, 1.0, shift="left")
    with pytest.raises(ValueError, match="dropout"):
        attend(q, k, v, None, 1.0, dropout=1.5)
