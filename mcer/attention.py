"""The attention core of the MCER blocks, with a backward pass that recomputes the maps.

``attend(q, k, v, keys, ...)`` with ``q, k, v`` ``[B, h, N, d]`` returns ``[B, h, N, d]``:

- plain: ``drop(softmax_keys(q k^T s)) v``;
- ``shift="pad"`` / ``"cyclic"`` (the shifted-key differential map of the denoiser):
  ``drop(softmax_keys(S) - softmax_keys2(shift(S))) v`` with ``S = q k^T s`` and ``shift(S)``
  the score columns moved one key later (``"pad"``: column 0 gets no key; ``"cyclic"``: the
  reference's ``torch.roll``, column 0 scores the last key). One dropout mask covers the
  difference, as in the reference.

The ``[B, h, N, N]`` score and probability maps are the largest activations of the model (at
the reference IEMOCAP size, 64 heads: 50 MB each in float32, several per block). The autograd
function here keeps only ``q``, ``k``, ``v`` and the 1-byte dropout mask for the backward pass
and recomputes the maps there (one ``q k^T`` product and the softmaxes), so a block holds
about an eighth of the memory an op-by-op graph holds. Forward values are those of the op-by-op
formula; gradients equal it up to float rounding (tested).

Dropout draws ``U[0, 1)`` float32 uniforms of the map's shape, one draw per call, as
:func:`mcer._dropout.dropout` does, and the ``1/(1-p)`` scale is applied to the ``[.., N, d]``
product instead of the ``N x N`` map. Maps keep the dtype of the scores (bf16 under autocast):
no float32 copy of a map is made.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch

from harness.layers import masked_softmax

SHIFTS = (None, "pad", "cyclic")


def shift_scores(scores: torch.Tensor, shift: str) -> torch.Tensor:
    """Columns moved one key later: ``out[..., j] = scores[..., j-1]``; column 0 is 0 (``"pad"``)
    or the last column (``"cyclic"``)."""
    if shift == "cyclic":
        return torch.roll(scores, shifts=1, dims=-1)
    out = torch.empty_like(scores)
    out[..., 0] = 0
    out[..., 1:] = scores[..., :-1]
    return out


def _softmax_in_place_masked(scores: torch.Tensor, keys: torch.Tensor | None) -> torch.Tensor:
    """:func:`harness.layers.masked_softmax` that masks ``scores`` in place (a fresh tensor here),
    saving a map-sized copy."""
    if keys is None:
        return torch.softmax(scores, dim=-1, dtype=scores.dtype)
    return masked_softmax(scores.masked_fill_(~keys, torch.finfo(scores.dtype).min), keys, filled=True)


def _probabilities(q: torch.Tensor, k: torch.Tensor, scale: float, keys: torch.Tensor | None, shift: str | None,
                   keys2: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    scores = torch.matmul(q * scale, k.transpose(-2, -1))  # scaling q ([.., N, d]) spares a pass over the map
    shifted = shift_scores(scores, shift) if shift is not None else None  # before scores is masked
    p1 = _softmax_in_place_masked(scores, keys)
    p2 = _softmax_in_place_masked(shifted, keys2) if shifted is not None else None
    return p1, p2


def _combine(p1: torch.Tensor, p2: torch.Tensor | None, keep: torch.Tensor | None, in_place: bool) -> torch.Tensor:
    """``(p1 - p2) * keep`` (``p2`` optional, ``keep`` a 0/1 mask of the maps' dtype); ``in_place``
    may overwrite ``p1`` (when it is not needed afterwards)."""
    if p2 is not None:
        d = p1.sub_(p2) if in_place else p1 - p2
    else:
        d = p1
    if keep is None:
        return d
    return d.mul_(keep) if (in_place or p2 is not None) else d * keep


class _AttentionCore(torch.autograd.Function):
    """See :func:`attend`. Keeps ``q, k, v`` and the bool dropout mask, and either the
    probability maps (``recompute=False``) or nothing more (``True``: maps recomputed)."""

    @staticmethod
    def forward(ctx, q, k, v, keys, keys2, keep, scale, shift, out_scale, recompute):  # noqa: ANN001
        p1, p2 = _probabilities(q, k, scale, keys, shift, keys2)
        maps = () if recompute else (p1,) if p2 is None else (p1, p2)
        mask = keep.to(p1.dtype) if keep is not None else None
        out = torch.matmul(_combine(p1, p2, mask, in_place=recompute), v)
        if out_scale != 1.0:
            out = out.mul_(out_scale)
        ctx.save_for_backward(q, k, v, keys, keys2, keep, *maps)
        ctx.scale, ctx.shift, ctx.out_scale, ctx.recompute = scale, shift, out_scale, recompute
        return out

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001
        q, k, v, keys, keys2, keep, *maps = ctx.saved_tensors
        if ctx.recompute:
            p1, p2 = _probabilities(q, k, ctx.scale, keys, ctx.shift, keys2)
        else:
            p1, p2 = maps[0], (maps[1] if len(maps) > 1 else None)
        mask = keep.to(p1.dtype) if keep is not None else None
        g = grad * ctx.out_scale if ctx.out_scale != 1.0 else grad
        none = (None,) * 7
        dv = None
        if ctx.needs_input_grad[2]:
            dv = torch.matmul(_combine(p1, p2, mask, in_place=False).transpose(-2, -1), g)
        if not (ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
            return None, None, dv, *none
        dmap = torch.matmul(g, v.transpose(-2, -1))
        if mask is not None:
            dmap.mul_(mask)
        # masked and empty rows have probability exactly 0, so their score gradient is 0 here
        dscores = torch._softmax_backward_data(dmap, p1, -1, p1.dtype)
        if p2 is not None:
            d2 = torch._softmax_backward_data(dmap, p2, -1, p2.dtype)  # gradient of -map 2 is -d2
            if ctx.shift == "cyclic":
                dscores.sub_(torch.roll(d2, shifts=-1, dims=-1))
            else:
                dscores[..., :-1].sub_(d2[..., 1:])
        # the score scale goes on the [.., N, d] products, not on the map
        dq = torch.matmul(dscores, k).mul_(ctx.scale) if ctx.needs_input_grad[0] else None
        dk = torch.matmul(dscores.transpose(-2, -1), q).mul_(ctx.scale) if ctx.needs_input_grad[1] else None
        return dq, dk, dv, *none


def dropout_keep(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """Keep mask (bool, True with probability ``1 - p``) from float32 uniforms of ``shape``."""
    return torch.rand(shape, dtype=torch.float32, device=device) >= p


_RECOMPUTE: contextvars.ContextVar[bool | None] = contextvars.ContextVar("mcer_recompute_maps", default=None)


def recompute_default(device: torch.device) -> bool:
    """Recompute the maps on the CPU (where resident memory is the scarce resource and the
    recomputation is a small share of a step); keep them on accelerators, where memory is
    plentiful and every extra kernel launch counts. :func:`recomputation` overrides this."""
    forced = _RECOMPUTE.get()
    return device.type == "cpu" if forced is None else forced


@contextlib.contextmanager
def recomputation(enabled: bool | None) -> Iterator[None]:
    """Within the block, :func:`attend` recomputes its maps (``True``), keeps them (``False``) or
    follows the device default (``None``). Used by benchmarks to count a step's minimal FLOPs."""
    token = _RECOMPUTE.set(enabled)
    try:
        yield
    finally:
        _RECOMPUTE.reset(token)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keys: torch.Tensor | None, scale: float,
           dropout: float = 0.0, training: bool = False, shift: str | None = None,
           keys2: torch.Tensor | None = None, recompute: bool | None = None) -> torch.Tensor:
    """Masked (differential) attention ``[B, h, N, d]`` -> ``[B, h, N, d]`` (see the module doc).

    ``keys`` / ``keys2``: bool key masks broadcastable to ``[B, h, N, N]`` (True = attend),
    ``None`` for all keys; ``keys2`` is the mask of the shifted map. ``scale`` multiplies the
    scores; ``dropout`` is the probability of dropping an entry of the (difference) map.
    ``recompute``: recompute the maps in the backward pass instead of keeping them (``None``:
    :func:`recompute_default` for the device). Results are the same either way.
    """
    if shift not in SHIFTS:
        raise ValueError(f"attention shift must be one of {SHIFTS}, got {shift!r}")
    if not 0.0 <= dropout <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {dropout}")
    n_q, n_k = q.shape[-2], k.shape[-2]
    keep = None
    out_scale = 1.0
    if training and dropout > 0.0:
        keep = dropout_keep(torch.Size((*q.shape[:-1], n_k)), dropout, q.device)
        out_scale = 1.0 / (1.0 - dropout) if dropout < 1.0 else 0.0
    if shift is not None and n_q != n_k:
        raise ValueError(f"a shifted-key map needs as many queries as keys, got {n_q} and {n_k}")
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        if recompute is None:
            recompute = recompute_default(q.device)
        return _AttentionCore.apply(q, k, v, keys, keys2, keep, float(scale), shift, out_scale, bool(recompute))
    p1, p2 = _probabilities(q, k, float(scale), keys, shift, keys2)
    out = torch.matmul(_combine(p1, p2, keep.to(p1.dtype) if keep is not None else None, in_place=True), v)
    return out.mul_(out_scale) if out_scale != 1.0 else out
