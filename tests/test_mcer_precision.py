"""MCER under bf16 autocast and on an accelerator-like device, checked on the CPU.

- Under ``torch.autocast("cpu", bfloat16)`` a training step runs, and every ``[.., N, N]`` map
  it writes (scores, probabilities, their gradients) is bf16: no float32 copy of a map (the
  float32 uniforms of the dropout draw aside).
- On the ``meta`` device (no data: reading a value back raises) forward, loss and backward run,
  so the step has no host synchronisation (``.item()``, ``bool(tensor)``, ``int(tensor)``) off the CPU.
"""

from __future__ import annotations

import collections

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from harness import MODELS
from harness.data.collate import DialogueBatch
from harness.data.types import DataSpec

SPEC = DataSpec(dims={"text": 12, "audio": 10, "video": 6}, num_classes=4, num_speakers=3)
B, N = 2, 7
OPTIONS = {"mcer": dict(hidden=16, heads=2, window=3, positional="rotary"),
           "mcer-reference": dict(hidden=16, heads=2, fusion_heads=2, window=3)}


pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(device="cpu"):
    g = torch.Generator().manual_seed(0)
    inputs = {m: torch.randn(B, N, d, generator=g).to(device) for m, d in SPEC.dims.items()}
    mask = (torch.arange(N)[None, :] < torch.tensor([N, 5])[:, None]).to(device)
    speakers = torch.randint(0, 3, (B, N), generator=g).to(device)
    labels = torch.randint(0, 4, (B, N), generator=g).to(device)
    return DialogueBatch(inputs, mask, speakers, labels, None, [[""] * N] * B)


def _grads(model):
    """Every parameter's gradient; only the reference's unused ``modality_scales`` may have none."""
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert all("modality_scales" in n for n in missing), missing
    return grads


class _MapDtypes(TorchDispatchMode):
    """Records (op, dtype) of every floating [.., N, N] tensor an op returns."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() >= 3 and t.shape[-2:] == (N, N):
                self.seen[(str(func.overloadpacket.__name__), t.dtype)] += 1
        return out


# Ops that CUDA autocast runs in float32 (torch.amp docs, "CUDA Ops that can autocast to float32");
# softmax-like ones only when no dtype is given. CPU autocast keeps most of them in bf16, so the
# test below flags the calls themselves.
CUDA_FLOAT32_OPS = {"softmax", "log_softmax", "exp", "log", "pow", "sum", "cumsum", "norm", "layer_norm",
                    "rsqrt", "reciprocal", "prod"}
HONOURS_DTYPE = {"softmax", "log_softmax", "sum", "cumsum", "prod"}


class _CudaFloat32Calls(TorchFunctionMode):
    """Records calls that CUDA autocast would upcast to float32 on a [.., N, N] map."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: collections.Counter = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        x = args[0] if args else None
        if (name in CUDA_FLOAT32_OPS and isinstance(x, torch.Tensor) and x.dim() >= 3 and x.shape[-2:] == (N, N)
                and not (name in HONOURS_DTYPE and kwargs.get("dtype") is not None)):
            self.calls[name] += 1
        return func(*args, **kwargs)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_no_map_op_that_cuda_autocast_would_upcast(name):
    torch.manual_seed(0)
    model = MODELS.create(name, SPEC, **OPTIONS[name]).train()
    batch = _batch()
    mode = _CudaFloat32Calls()
    with mode:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model.loss(model(batch), batch)
        loss.backward()
    assert mode.calls == {}, f"map-sized calls CUDA autocast would run in float32: {dict(mode.calls)}"


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_bf16_autocast_step_keeps_maps_in_bf16(name):
    torch.manual_seed(0)
    model = MODELS.create(name, SPEC, **OPTIONS[name]).train()
    batch = _batch()
    rec = _MapDtypes()
    with rec:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model.loss(model(batch), batch)
        loss.backward()
    assert torch.isfinite(loss)
    grads = _grads(model)
    assert all(torch.isfinite(g).all() for g in grads.values())
    # the dropout draw: float32 uniforms, compared in place, then cast to the map's dtype
    float_maps = {op: n for (op, dtype), n in rec.seen.items() if dtype != torch.bfloat16 and op not in ("rand", "ge_")}
    assert float_maps == {}, f"ops writing non-bf16 [.., N, N] maps under autocast: {float_maps}"
    assert sum(n for (op, dtype), n in rec.seen.items() if dtype == torch.bfloat16) > 0


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_step_has_no_host_sync_off_the_cpu(name):
    torch.manual_seed(0)
    model = MODELS.create(name, SPEC, **OPTIONS[name]).to("meta").train()
    batch = _batch("meta")
    loss = model.loss(model(batch), batch)
    loss.backward()
    assert loss.device.type == "meta"
    assert _grads(model)


def test_meta_device_refuses_a_sync():
    """The premise of the test above: a host read-back on ``meta`` raises."""
    with pytest.raises((RuntimeError, NotImplementedError)):
        bool(torch.ones(1, device="meta").any())
