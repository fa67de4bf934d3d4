"""Multimodal Transformer (Tsai et al. 2019, "Multimodal Transformer for Unaligned Multimodal
Language Sequences", ACL), as released (yaohungt/Multimodal-Transformer) and as configured in
MMSA (thuiar/MMSA ``MULT``).

Architecture (the reference code), on unaligned sequences:

* each modality is projected to width ``d`` by a temporal 1-D convolution without bias or padding
  (kernel ``text_kernel`` / ``audio_kernel`` / ``video_kernel``; the valid convolution shortens
  the sequence by ``kernel - 1``), skipped when the input is already ``d`` wide; the text input
  first gets ``text_dropout``;
* every transformer *stack* scales its inputs by ``sqrt(width)``, adds fixed sinusoidal positions
  (``positions``; fairseq's layout, positions counted from 1), applies ``embed_dropout`` (a
  crossmodal stack embeds its source twice, so keys and values get separate dropout masks), runs
  its pre-LayerNorm layers and ends with a LayerNorm of its own. A layer normalises the queries
  and the keys/values with the *same* LayerNorm, attends (``heads`` heads, dropout on the
  attention weights), adds the result after ``res_dropout``, then a 4x-wide ReLU feed-forward
  with ``relu_dropout`` inside and ``res_dropout`` after;
* ``causal_mask``: step ``i`` of the queries sees key steps ``j <= i + |T_k - T_q|`` (the
  reference's ``buffered_future_mask``; ordinary causal attention within a modality);
* for every target modality and every other source a crossmodal stack of ``layers`` layers
  (``d`` wide; the attention dropout follows the *source*: ``attn_dropout`` for text,
  ``audio_attn_dropout``, ``video_attn_dropout``); the target's crossmodal outputs are
  concatenated and pass a self-attention memory stack of ``memory_layers`` layers
  (``d * (M - 1)`` wide, so its scaling is ``sqrt(2d)`` for three modalities; ``attn_dropout``);
* the memory output at the target's last step, concatenated over targets (text, audio, video),
  goes through a residual block ``x + proj2(dropout(relu(proj1(x))))`` (``out_dropout``) and a
  linear output layer.

The references run fixed-length padded tensors without any padding mask and read the last
*padded* step; here padding keys are masked, the causal offset uses each sample's real lengths
(what the reference computes for that sample alone), and the last *real* step is read, so a
sample's output does not depend on its batch. The reference treats an input step whose first
feature is exactly 0 as padding when placing positions; here every real step gets its position.
The reference builds ``max(layers, 3)`` memory layers: the presets set ``memory_layers`` so.

Defaults (no preset): small for the CPU, not the paper's: ``d=16, heads=2, layers=2,
memory_layers=2``, kernels 1, every dropout ``dropout=0.1``, causal mask and positions on (the
original's defaults). Presets: ``mosi``, ``mosei``, ``sims`` (MMSA's ``config_regression.json``:
no positions) and ``original`` (the released code's ``main.py`` defaults on MOSI).
Utterance level; needs at least two modalities.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.layers import option_or, reference_order
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.options import DropoutRate, PositiveInt
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import Choice, IntRange, LogUniform, Uniform

_SHORT = {"text": "l", "audio": "a", "video": "v"}


def fairseq_positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoidal positions as the reference computes them: ``[length, dim]`` for positions
    1..length, ``[sin | cos]`` halves with frequencies ``exp(-k ln(10000) / (half - 1))``, a zero
    column when ``dim`` is odd."""
    half = dim // 2
    scale = math.log(10000.0) / max(half - 1, 1)
    freq = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * -scale)
    ang = torch.arange(1, length + 1, device=device, dtype=torch.float32).unsqueeze(1) * freq.unsqueeze(0)
    pe = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)
    if dim % 2:
        pe = torch.cat([pe, pe.new_zeros(length, 1)], dim=1)
    return pe.to(dtype)


def attention_mask(q_len: torch.Tensor, k_len: torch.Tensor, tq: int, tk: int, causal: bool, heads: int) -> torch.Tensor:
    """Bool ``[B*heads, tq, tk]``, True where query step ``i`` may NOT see key step ``j``: keys past
    the sample's real length, and with ``causal`` keys ``j > i + |k_len - q_len|``."""
    i = torch.arange(tq, device=q_len.device)[None, :, None]
    j = torch.arange(tk, device=q_len.device)[None, None, :]
    allowed = (j < k_len[:, None, None]).expand(-1, tq, -1)
    if causal:
        allowed = allowed & (j <= i + (k_len - q_len).abs()[:, None, None])
    return (~allowed).repeat_interleave(heads, dim=0)


class MulTLayer(nn.Module):
    """One pre-LayerNorm encoder layer of the reference: ``[B, Tq, E]`` (+ ``[B, Tk, E]``) -> ``[B, Tq, E]``."""

    def __init__(self, width: int, heads: int, attn_dropout: float, relu_dropout: float, res_dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(width, heads, dropout=attn_dropout, batch_first=True)
        nn.init.xavier_uniform_(self.self_attn.out_proj.weight)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        self.layer_norms = nn.ModuleList([nn.LayerNorm(width), nn.LayerNorm(width)])
        self.relu_dropout, self.res_dropout = relu_dropout, res_dropout

    def forward(self, x: torch.Tensor, key: torch.Tensor | None, value: torch.Tensor | None,
                mask: torch.Tensor) -> torch.Tensor:
        q = self.layer_norms[0](x)
        if key is None or value is None:
            k = v = q
        else:  # one LayerNorm for queries, keys and values
            k, v = self.layer_norms[0](key), self.layer_norms[0](value)
        a, _ = self.self_attn(q, k, v, attn_mask=mask, need_weights=False)
        x = x + F.dropout(a, self.res_dropout, self.training)
        y = F.dropout(F.relu(self.fc1(self.layer_norms[1](x))), self.relu_dropout, self.training)
        return x + F.dropout(self.fc2(y), self.res_dropout, self.training)


class MulTStack(nn.Module):
    """The reference's ``TransformerEncoder``: scaling by ``sqrt(width)``, positions, embedding
    dropout, ``layers`` layers, a final LayerNorm. Crossmodal when given a source."""

    def __init__(self, width: int, heads: int, layers: int, attn_dropout: float, relu_dropout: float,
                 res_dropout: float, embed_dropout: float, positions: bool, causal: bool) -> None:
        super().__init__()
        self.width, self.heads, self.positions, self.causal = width, heads, positions, causal
        self.embed_dropout = embed_dropout
        self.layers = nn.ModuleList([MulTLayer(width, heads, attn_dropout, relu_dropout, res_dropout)
                                     for _ in range(layers)])
        self.layer_norm = nn.LayerNorm(width)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = math.sqrt(self.width) * x
        if self.positions:
            x = x + fairseq_positions(x.shape[1], self.width, x.device, x.dtype)
        return F.dropout(x, self.embed_dropout, self.training)

    def forward(self, x: torch.Tensor, x_len: torch.Tensor, source: torch.Tensor | None = None,
                source_len: torch.Tensor | None = None) -> torch.Tensor:
        h = self._embed(x)
        # The source is embedded twice, as the references do: the key and the value each get their
        # own embedding-dropout mask (drawn after the queries', key before value).
        key = None if source is None else self._embed(source)
        value = None if source is None else self._embed(source)
        k_len = x_len if source_len is None else source_len
        mask = attention_mask(x_len, k_len, h.shape[1], h.shape[1] if key is None else key.shape[1], self.causal, self.heads)
        for layer in self.layers:
            h = layer(h, key, value, mask)
        return self.layer_norm(h)


_MMSA = dict(repo="thuiar/MMSA", path="src/MMSA/models/singleTask/MULT.py", commit="a94e65d")
_ORIGINAL = dict(repo="yaohungt/Multimodal-Transformer", path="src/models.py", commit="a670936")
_MMSA_NOTES = ("Not reproduced (padding safety): MMSA attends over zero-padded tensors of fixed length (50/500/375) "
               "without a padding mask, offsets the causal mask by the padded lengths and reads the last padded step; "
               "here padding keys are masked, offsets use real lengths and the last real step is read. MMSA trains "
               "with update_epochs=8 gradient accumulation and clip_grad_value_ on the running sum; the recipe takes "
               "8 x its batch per step and clips the mean gradient by value at grad_clip/8 (the same step under Adam's "
               "scale invariance). Its Adam gets no weight decay although the config names one. Selection: validation "
               "L1 loss (= MAE), early stop 8, no epoch limit.")


def _blocks(mods: tuple[str, ...] = ("text", "audio", "video")) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {f"proj_{_SHORT[m]}": (f"proj.{m}",) for m in mods}
    for t in mods:
        for s in mods:
            if s != t:
                out[f"trans_{_SHORT[t]}_with_{_SHORT[s]}"] = (f"cross.{s}_to_{t}",)
        out[f"trans_{_SHORT[t]}_mem"] = (f"memory.{t}",)
    return out


def _counts(proj: tuple[int, int, int], cross: int, mem: int, tail: tuple[int, int, int]) -> dict[str, int]:
    out = {"proj_l": proj[0], "proj_a": proj[1], "proj_v": proj[2]}
    for t in "lav":
        for s in "lav":
            if s != t:
                out[f"trans_{t}_with_{s}"] = cross
        out[f"trans_{t}_mem"] = mem
    out.update(proj1=tail[0], proj2=tail[1], out_layer=tail[2])
    return out


def _mmsa(ds: str, dims: dict, d: int, heads: int, layers: int, kernels: tuple, attn: tuple, relu: float, embed: float,
          res: float, text: float, out: float, bs: int, lr: float, clip: float, plateau: int, params: int,
          blocks: dict) -> Preset:
    return Preset(
        options=dict(d=d, heads=heads, layers=layers, memory_layers=max(layers, 3), text_kernel=kernels[0],
                     audio_kernel=kernels[1], video_kernel=kernels[2], attn_dropout=attn[0], audio_attn_dropout=attn[1],
                     video_attn_dropout=attn[2], relu_dropout=relu, embed_dropout=embed, res_dropout=res,
                     text_dropout=text, out_dropout=out, causal_mask=True, positions=False),
        dims=dims, task="regression",
        recipe=dict(optimizer="adam", lr=lr, weight_decay=0.0, batch_size=8 * bs, epochs=200, patience=8,
                    grad_clip=clip / 8, grad_clip_mode="value", lr_schedule="plateau",
                    schedule_options={"factor": 0.1, "patience": plateau}, selection_metric="mae"),
        reference=Reference(**_MMSA, config=f"src/MMSA/config/config_regression.json: mult.commonParams + datasetParams.{ds}",
                            params=params, blocks=blocks, notes=_MMSA_NOTES),
        blocks=_blocks(),
        notes=f"MMSA: batch {bs} x update_epochs 8, clip value {clip}; memory stacks have max(nlevels, 3) layers.",
    )


MULT_PRESETS: dict[str, Preset] = {
    "mosi": _mmsa("mosi", {"text": 768, "audio": 5, "video": 20}, 50, 10, 4, (5, 5, 5), (0.3, 0.2, 0.0), 0.0, 0.2, 0.0,
                  0.5, 0.5, 16, 2e-3, 0.6, 5, 2_571_551,
                  _counts((192_000, 1_250, 5_000), 122_700, 485_400, (90_300, 90_300, 301))),
    "mosei": _mmsa("mosei", {"text": 768, "audio": 74, "video": 35}, 30, 6, 4, (5, 1, 3), (0.4, 0.0, 0.0), 0.0, 0.0, 0.0,
                   0.3, 0.5, 4, 5e-4, 0.6, 20, 982_951,
                   _counts((115_200, 2_220, 3_150), 44_820, 176_040, (32_580, 32_580, 181))),
    "sims": _mmsa("sims", {"text": 768, "audio": 33, "video": 709}, 50, 10, 2, (5, 1, 1), (0.2, 0.1, 0.0), 0.0, 0.1, 0.2,
                  0.3, 0.1, 16, 2e-3, 0.6, 10, 1_870_701,
                  _counts((192_000, 1_650, 35_450), 61_400, 364_100, (90_300, 90_300, 301))),
    "original": Preset(
        options=dict(d=30, heads=5, layers=5, memory_layers=5, text_kernel=1, audio_kernel=1, video_kernel=1,
                     attn_dropout=0.1, audio_attn_dropout=0.0, video_attn_dropout=0.0, relu_dropout=0.1,
                     embed_dropout=0.25, res_dropout=0.1, text_dropout=0.25, out_dropout=0.0, causal_mask=True,
                     positions=True),
        dims={"text": 300, "audio": 5, "video": 20}, task="regression",
        recipe=dict(optimizer="adam", lr=1e-3, weight_decay=0.0, batch_size=24, epochs=40, patience=40, grad_clip=0.8,
                    grad_clip_mode="norm", lr_schedule="plateau", schedule_options={"factor": 0.1, "patience": 20},
                    selection_metric="mae"),
        reference=Reference(**_ORIGINAL, config="main.py defaults (MOSI: GloVe 300 / COVAREP 5 / Facet 20, output 1)",
                            params=1_071_211,
                            blocks=_counts((9_000, 150, 600), 56_010, 220_020, (32_580, 32_580, 181)),
                            notes="The released code keeps the best validation L1 loss (= MAE) over 40 epochs without "
                                  "early stopping; its text input dropout is embed_dropout. Not reproduced (padding "
                                  "safety): it attends over padded tensors without a padding mask and reads the last "
                                  "padded step."),
        blocks=_blocks(),
    ),
}


@MODELS.register("mult", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "d": Choice([16, 32]), "layers": IntRange(1, 3)},
                 level="utterance", modalities=["text", "audio", "video"],
                 paper="Tsai et al. 2019, Multimodal Transformer for Unaligned Multimodal Language Sequences",
                 presets=MULT_PRESETS)
class MulT(BenchModel):
    """Crossmodal transformers between every ordered pair of modalities, then self-attention memories."""

    level = "utterance"

    def __init__(self, spec: DataSpec, d: PositiveInt = 16, heads: PositiveInt = 2, layers: PositiveInt = 2,
                 memory_layers: PositiveInt = 2, text_kernel: PositiveInt = 1, audio_kernel: PositiveInt = 1,
                 video_kernel: PositiveInt = 1, dropout: DropoutRate = 0.1, text_dropout: DropoutRate | None = None,
                 embed_dropout: DropoutRate | None = None, attn_dropout: DropoutRate | None = None,
                 audio_attn_dropout: DropoutRate | None = None, video_attn_dropout: DropoutRate | None = None,
                 relu_dropout: DropoutRate | None = None, res_dropout: DropoutRate | None = None,
                 out_dropout: DropoutRate | None = None, causal_mask: bool = True, positions: bool = True) -> None:
        super().__init__(spec)
        if len(spec.dims) < 2:
            raise ValueError(f"mult fuses at least two modalities; the data has {list(spec.dims)}")
        kernels = {"text": text_kernel, "audio": audio_kernel, "video": video_kernel}
        if d % heads:
            raise ValueError(f"mult: d ({d}) must be divisible by heads ({heads})")
        p = {name: option_or(v, dropout) for name, v in (
            ("text_dropout", text_dropout), ("embed_dropout", embed_dropout), ("attn_dropout", attn_dropout),
            ("audio_attn_dropout", audio_attn_dropout), ("video_attn_dropout", video_attn_dropout),
            ("relu_dropout", relu_dropout), ("res_dropout", res_dropout), ("out_dropout", out_dropout))}
        mods = reference_order(list(spec.dims), ("text", "audio", "video"))
        self.mods, self.text_dropout = mods, p["text_dropout"]
        self.kernels = {m: kernels.get(m, 1) if spec.dims[m] != d else 1 for m in mods}
        self.proj = nn.ModuleDict({m: nn.Conv1d(spec.dims[m], d, kernel_size=self.kernels[m], bias=False)
                                   for m in mods if spec.dims[m] != d})
        source_attn = {"audio": p["audio_attn_dropout"], "video": p["video_attn_dropout"]}

        def stack(width: int, n: int, attn: float) -> MulTStack:
            return MulTStack(width, heads, n, attn, p["relu_dropout"], p["res_dropout"], p["embed_dropout"], positions,
                             causal_mask)

        self.cross = nn.ModuleDict({f"{s}_to_{t}": stack(d, layers, source_attn.get(s, p["attn_dropout"]))
                                    for t in mods for s in mods if s != t})
        wide = d * (len(mods) - 1)
        if wide % heads:
            raise ValueError(f"mult: the memory width {wide} must be divisible by heads ({heads})")
        self.memory = nn.ModuleDict({t: stack(wide, memory_layers, p["attn_dropout"]) for t in mods})
        total = wide * len(mods)
        self.proj1 = nn.Linear(total, total)
        self.proj2 = nn.Linear(total, total)
        self.out_dropout = p["out_dropout"]
        self.out_layer = nn.Linear(total, spec.output_dim)

    def _project(self, batch: UtteranceBatch, m: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, T', d]`` and the real lengths ``T'`` after the valid convolution."""
        x, lengths = batch.inputs[m], batch.lengths[m].to(batch.inputs[m].device)
        if m == "text":
            x = F.dropout(x, self.text_dropout, self.training)
        if m not in self.proj:
            return x, lengths
        k = self.kernels[m]
        if x.shape[1] < k:  # a sample shorter than the kernel sees zeros, as in a zero-padded reference tensor
            x = F.pad(x, (0, 0, 0, k - x.shape[1]))
        y = self.proj[m](x.transpose(1, 2)).transpose(1, 2)
        return y, (lengths - k + 1).clamp(min=1)

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        h, lens = {}, {}
        for m in self.mods:
            h[m], lens[m] = self._project(batch, m)
        last = []
        for t in self.mods:
            z = torch.cat([self.cross[f"{s}_to_{t}"](h[t], lens[t], h[s], lens[s]) for s in self.mods if s != t], dim=-1)
            z = self.memory[t](z, lens[t])
            last.append(z[torch.arange(z.shape[0], device=z.device), lens[t] - 1])
        x = torch.cat(last, dim=-1)
        x = x + self.proj2(F.dropout(F.relu(self.proj1(x)), self.out_dropout, self.training))
        return ModelOutput(squeeze_regression(self.out_layer(x), self.spec))
