"""Layers shared by several models (MCER and the baselines): their one home.

Everything here respects padding: a sample's output never depends on the rows it is padded
with, so predictions do not depend on what a sample is batched with. Blocks that only one
model uses live in that model's own file.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from harness.models import masked_mean


class SequenceEncoder(nn.Module):
    """Bidirectional GRU over the real frames of ``[B, T, D]``; returns ``[B, 2*hidden]``.

    Padding never enters the recurrence (packed sequences), so a sample's encoding does not
    depend on what it is batched with.
    """

    def __init__(self, in_dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.rnn = nn.GRU(in_dim, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = 2 * hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.norm(x), lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)  # [2, B, hidden]
        return self.dropout(torch.cat([h[0], h[1]], dim=-1))


def mlp(in_dim: int, hidden: int, out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """Two-layer perceptron with GELU and dropout."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))


def dialogue_lengths(mask: torch.Tensor) -> torch.Tensor:
    """Number of real utterances per dialogue from a ``[B, N]`` prefix mask: long ``[B]``."""
    return mask.long().sum(1).clamp(min=1)


def masked_softmax(scores: torch.Tensor, key_mask: torch.Tensor | None, filled: bool = False) -> torch.Tensor:
    """Softmax over the last axis where ``key_mask`` is True; rows with no valid key give zeros.

    ``scores``: ``[..., Nq, Nk]``; ``key_mask``: bool broadcastable to ``scores`` (True = keep).
    Masked entries are exactly zero, so padding never contributes to a real row. The result
    keeps the dtype of ``scores`` even under autocast (which would otherwise write a float32
    map): a bf16 map stays bf16 (the softmax still accumulates in float32 internally).
    ``filled=True`` says the masked entries of ``scores`` already hold ``finfo.min``.
    """
    if key_mask is None:
        return torch.softmax(scores, dim=-1, dtype=scores.dtype)
    if not filled:
        scores = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1, dtype=scores.dtype)
    # In a row with a valid key, exp(finfo.min - max) underflows to exactly 0, so only rows
    # without any valid key need zeroing. On the CPU, skip that pass when there is none; on an
    # accelerator, always apply it (asking would cost a device sync).
    empty = ~key_mask.any(dim=-1, keepdim=True)
    if probs.device.type == "cpu" and not bool(empty.any()):
        return probs
    return probs.masked_fill(empty, 0.0)


def gelu_tanh(x: torch.Tensor, coefficient: float = 0.5) -> torch.Tensor:
    """``c * x * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``; ``c = 0.5`` is the usual GELU.

    Computed as ``2c * gelu_tanh_approximation(x)``: one fused kernel forward and backward
    (instead of eight elementwise passes, and no float32 upcast of ``x.pow(3)`` under autocast).
    """
    y = F.gelu(x, approximate="tanh")
    return y if coefficient == 0.5 else y * (2.0 * coefficient)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, N, H]`` -> ``[B, heads, N, H/heads]``."""
    b, n, h = x.shape
    return x.view(b, n, heads, h // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, heads, N, d]`` -> ``[B, N, heads*d]``."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


# ---------------------------------------------------------------------------------------------
# Blocks of the MMSA-configured utterance models (TFN, LMF, LF-DNN, MFN, EF-LSTM)


def resample(x: torch.Tensor, lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """Linearly resample the real frames of each ``x[b]`` (``[B, T, D]``) to ``[B, steps, D]``.

    Stands in for word alignment in models that step through modalities together (MFN,
    EF-LSTM): only the first ``lengths[b]`` frames are read, so padding never enters.
    """
    out = []
    for b in range(x.shape[0]):
        seq = x[b, : max(int(lengths[b]), 1)].transpose(0, 1).unsqueeze(0)  # [1, D, T_b]
        if seq.shape[-1] == 1:
            out.append(seq.expand(-1, -1, steps)[0].transpose(0, 1))
        else:
            out.append(torch.nn.functional.interpolate(seq, size=steps, mode="linear", align_corners=True)[0].transpose(0, 1))
    return torch.stack(out)


class ParameterBlock(nn.Module):
    """A module holding one tensor parameter, so a bare parameter of a reference model (LMF's
    factors, TFN's output range) is a named block of its own. ``forward()`` returns it."""

    def __init__(self, *shape: int, requires_grad: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(*shape), requires_grad=requires_grad)

    def forward(self) -> torch.Tensor:
        return self.weight


class FrameMeanSubnet(nn.Module):
    """TFN's audio/visual subnetwork (MMSA ``SubNet``): the mean of the real frames, then
    BatchNorm, dropout and three Linear+ReLU layers. ``[B, T, D]`` + lengths ``[B]`` -> ``[B, hidden]``.

    The BatchNorm uses batch statistics in training; a training batch of one sample (where
    batch statistics are undefined) is normalised with the running statistics instead.
    """

    def __init__(self, in_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(in_dim)
        self.drop = nn.Dropout(dropout)
        self.linear_1 = nn.Linear(in_dim, hidden)
        self.linear_2 = nn.Linear(hidden, hidden)
        self.linear_3 = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        z = masked_mean(x, lengths)
        if self.training and z.shape[0] == 1:
            z = nn.functional.batch_norm(z, self.norm.running_mean, self.norm.running_var, self.norm.weight,
                                         self.norm.bias, training=False, eps=self.norm.eps)
        else:
            z = self.norm(z)
        z = torch.relu(self.linear_1(self.drop(z)))
        return torch.relu(self.linear_3(torch.relu(self.linear_2(z))))


class LastStateLSTMSubnet(nn.Module):
    """TFN's language subnetwork (MMSA ``TextSubNet``): a one-layer unidirectional LSTM of width
    ``hidden`` over the real frames (packed), its final hidden state, dropout, and a linear layer
    to ``out_dim`` (no activation). ``[B, T, D]`` + lengths ``[B]`` -> ``[B, out_dim]``."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.rnn = nn.LSTM(in_dim, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.linear_1 = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.rnn(packed)
        return self.linear_1(self.dropout(h[-1]))


def tfn_subnets(model: str, dims: dict[str, int], text_hidden: int, text_out: int, audio_hidden: int,
                video_hidden: int, dropout: float, audio_dropout: float | None = None,
                video_dropout: float | None = None,
                text_dropout: float | None = None) -> tuple[nn.ModuleDict, dict[str, int]]:
    """The TFN family's per-modality subnetworks (TFN, LMF, LF-DNN): for text a
    :class:`LastStateLSTMSubnet` of width ``text_hidden`` to ``text_out``, for the others a
    :class:`FrameMeanSubnet` of width ``<modality>_hidden``; each modality's dropout falls back to
    ``dropout``. Returns the subnets (keyed by modality, in ``dims`` order) and each one's output
    width; errors name ``model``. The sizes and rates are the models' declared options
    (:mod:`harness.options`), checked where the models are created."""
    hidden = modality_sizes(model, dims, text_hidden=text_hidden, audio_hidden=audio_hidden,
                            video_hidden=video_hidden)
    drops = {m: option_or(p, dropout)
             for m, p in (("audio", audio_dropout), ("video", video_dropout), ("text", text_dropout))}
    subnets = nn.ModuleDict({
        m: LastStateLSTMSubnet(d, hidden[m], text_out, drops.get(m, dropout)) if m == "text"
        else FrameMeanSubnet(d, hidden[m], drops.get(m, dropout))
        for m, d in dims.items()
    })
    return subnets, {m: text_out if m == "text" else hidden[m] for m in dims}


def modality_sizes(model: str, dims: dict[str, int], **sizes: int) -> dict[str, int]:
    """Per-modality sizes from options named ``<modality>_<what>`` (``text_hidden=...``):
    ``{modality: size}`` for the modalities in ``dims``; a clear error for a modality without one."""
    out = {}
    for m in dims:
        key = next((k for k in sizes if k.startswith(f"{m}_")), None)
        if key is None:
            raise ValueError(f"{model}: no size option for modality {m!r}; it takes {sorted(sizes)}")
        out[m] = int(sizes[key])
    return out


def reference_order(modalities: list[str] | tuple[str, ...], order: tuple[str, ...]) -> list[str]:
    """``modalities`` in the reference's order (``order`` first, then any others as given)."""
    return [m for m in order if m in modalities] + [m for m in modalities if m not in order]


def option_or(value: float | None, default: float) -> float:
    """A dropout option that falls back to the model-wide ``dropout`` when left ``None``."""
    return default if value is None else float(value)


# ---------------------------------------------------------------------------------------------
# Blocks of the conversation models (bc-LSTM, DialogueRNN, DialogueGCN, MMGCN, SDT)

def run_packed(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run a ``batch_first`` recurrent network over the real steps of every sequence only.

    ``x``: ``[B, N, D]``; ``lengths``: ``[B]`` real steps per row (>= 1). Returns the network's
    per-step outputs ``[B, N, H_out]`` with zeros at padding steps, so the backward direction
    of a bidirectional network starts at a sequence's own last step, never in its padding.
    """
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


class MatchingAttention(nn.Module):
    """Attention of every utterance over the real utterances of its dialogue (conv-emotion's
    ``MatchingAttention(att_type="general2")``, used by bc-LSTM, DialogueRNN and DialogueGCN).

    ``score(t, s) = (W m_t + b) . m_s``, squashed by ``tanh`` when ``tanh=True`` (bc-LSTM's and
    DialogueGCN's copy of the code; DialogueRNN's has none), softmax over the real ``s``;
    utterance ``t`` gets ``sum_s alpha_ts m_s``. ``memory``: ``[B, N, D]``; ``mask``: bool
    ``[B, N]`` (True = real). Returns ``[B, N, D]``; padding keys never contribute.
    """

    def __init__(self, dim: int, tanh: bool = False) -> None:
        super().__init__()
        self.transform = nn.Linear(dim, dim)
        self.tanh = tanh

    def forward(self, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = torch.einsum("btd,bsd->bts", self.transform(memory), memory)
        if self.tanh:
            scores = torch.tanh(scores)
        return torch.einsum("bts,bsd->btd", masked_softmax(scores, mask[:, None, :]), memory)


def input_modalities(spec_dims: dict[str, int], modalities: tuple[str, ...] | list[str] | None, what: str) -> tuple[str, ...]:
    """The modalities a model reads, in the order it concatenates them.

    ``None`` means every modality of the data, in the data's order. A reference that reads only
    some of the modalities its data files carry (conv-emotion's text-only IEMOCAP runs) names
    them, e.g. ``("text",)``; each must be one of ``spec_dims``, without repeats.
    """
    if modalities is None:
        return tuple(spec_dims)
    if isinstance(modalities, str):
        modalities = (modalities,)
    chosen = tuple(modalities)
    unknown = [m for m in chosen if m not in spec_dims]
    if not chosen or unknown or len(set(chosen)) != len(chosen):
        raise ValueError(f"{what}: modalities must name distinct modalities of the data {sorted(spec_dims)}, "
                         f"got {list(chosen)!r}")
    return chosen
