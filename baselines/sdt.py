"""SDT (Ma et al. 2023, "A Transformer-Based Model With Self-Distillation for Multimodal Emotion
Recognition in Conversations", IEEE Transactions on Multimedia), as released in
butterfliesss/SDT (``model.py``, ``Transformer_Based_Model``; ``train.py`` for the loss).

Architecture (the released code):

1. Every modality's utterance vectors are projected to width ``d`` without bias (the release's
   kernel-1 ``Conv1d``). Speaker ids index ``Embedding(S + 1, d)`` whose last row (padding) is 0.
2. For every target modality ``b`` and source ``a`` (``b`` itself included) a transformer
   encoder of ``layers`` layers: source and target each get the interleaved sinusoidal
   positions and the speaker embedding added, then dropout. A layer's query stream is
   layer-normalised from the second layer on (not in the first); its keys/values are the
   (normalised) query stream itself for ``a == b`` and the source's encoder input otherwise;
   multi-head attention over the real utterances, ``out = dropout(attention) + query``, then a
   pre-LayerNorm feed-forward of width ``ff`` (the release: ``d``) with tanh-GELU and a residual.
3. Unimodal gates: each encoder output ``h`` becomes ``sigmoid(W h) * h`` (``W`` without bias;
   with ``frozen_identity_gates`` ``W`` is the identity and not trained, the release's MELD
   setting). For each target the gated outputs (itself first, then the other modalities in
   data order) are concatenated and reduced by ``Linear(M d -> d)``.
4. Multimodal gated fusion: ONE ``Linear(d, d)`` without bias scores each modality's vector,
   a softmax over the modalities per feature weights them, their weighted sum is the fused
   vector.
5. Heads: the teacher ``Linear(d, C)`` on the fused vector gives the prediction; one student
   per modality, ``ReLU, Dropout, Linear(d, C)``, on that modality's vector.
6. Loss (:meth:`SDT.loss`): the teacher's task loss + ``gamma_ce`` x the students' task losses +
   ``gamma_kl`` x ``sum_m KL(softmax(teacher / T) || softmax(student_m / T))`` summed over the
   classes and averaged over the real utterances; the teacher is not detached and the KL is not
   scaled by ``T^2`` (as the release computes it). For regression the students use L1 to the
   target and the mean squared difference to the teacher's score.

Keys at padding utterances are masked in every attention, so predictions do not depend on the
batch. The release creates a LayerNorm in every first layer that its forward never uses; it is
not created here (its presets count 18,432 parameters more than they use).

Defaults (no preset): ``d=32``, ``heads=4``, ``layers=1``, ``ff=d``, ``dropout=0.1``,
``temperature=1``, ``gamma_ce=gamma_kl=1``: small for the CPU, not the paper's configuration.
``preset="iemocap"`` / ``"meld"`` give the released configurations (d 1024, 8 heads, dropout 0.5).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.collate import Batch, DialogueBatch
from harness.data.types import DataSpec
from harness.layers import gelu_tanh
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.options import DropoutRate, NonNegativeFloat, PositiveFloat, PositiveInt
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import Choice, LogUniform, Uniform


def interleaved_positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoidal positions with sines at even and cosines at odd features: ``[length, dim]``."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * -(math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe.to(dtype)


class EncoderLayer(nn.Module):
    """One layer of SDT's (cross-modal) transformer: ``[B, N, d]`` queries, keys/values from
    ``source`` (``None``: the queries themselves), ``key_padding`` bool ``[B, N]`` True at padding."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float, norm_query: bool) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(d, eps=1e-6) if norm_query else None
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.ff_norm = nn.LayerNorm(d, eps=1e-6)
        self.w_1 = nn.Linear(d, ff)
        self.w_2 = nn.Linear(ff, d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, source: torch.Tensor | None, key_padding: torch.Tensor) -> torch.Tensor:
        if self.layer_norm is not None:
            query = self.layer_norm(query)
        kv = query if source is None else source
        context, _ = self.self_attn(query, kv, kv, key_padding_mask=key_padding, need_weights=False)
        out = self.dropout(context) + query
        return out + self.dropout(self.w_2(self.dropout(gelu_tanh(self.w_1(self.ff_norm(out))))))


_SHORT = {"text": "t", "audio": "a", "video": "v"}
_RELEASED = dict(repo="butterfliesss/SDT", path="model.py", commit="60af921")
_IEMOCAP_CLASS_WEIGHTS = [1 / 0.086747, 1 / 0.144406, 1 / 0.227883, 1 / 0.160585, 1 / 0.127711, 1 / 0.252668]
_MODS = ("text", "audio", "video")
_BLOCKS: dict[str, tuple[str, ...]] = {
    "textf_input": ("proj.text",), "acouf_input": ("proj.audio",), "visuf_input": ("proj.video",),
    **{f"{_SHORT[a]}_{_SHORT[b]}": (f"encoders.{a}_to_{b}",) for a in _MODS for b in _MODS},
    **{f"{_SHORT[a]}_{_SHORT[b]}_gate": (f"gates.{a}_to_{b}",) for a in _MODS for b in _MODS},
    **{f"features_reduce_{_SHORT[b]}": (f"reduce.{b}",) for b in _MODS},
    **{f"{_SHORT[b]}_output_layer": (f"students.{b}",) for b in _MODS},
    "all_output_layer": ("teacher",),
}


def _reference_blocks(audio_dim: int, speakers: int, classes: int) -> dict[str, int]:
    d = 1024
    enc = 4 * (d * d + d) + 2 * (d * d + d) + 2 * d  # attention + feed-forward with its LayerNorm (used part)
    return {"speaker_embeddings": (speakers + 1) * d, "textf_input": 1024 * d, "acouf_input": audio_dim * d,
            "visuf_input": 342 * d, **{f"{_SHORT[a]}_{_SHORT[b]}": enc for a in _MODS for b in _MODS},
            **{f"{_SHORT[a]}_{_SHORT[b]}_gate": d * d for a in _MODS for b in _MODS},
            **{f"features_reduce_{_SHORT[b]}": 3 * d * d + d for b in _MODS}, "last_gate": d * d,
            **{f"{_SHORT[b]}_output_layer": d * classes + classes for b in _MODS},
            "all_output_layer": d * classes + classes}


_UNUSED_NOTE = ("The release creates one LayerNorm per encoder layer and uses it from the second layer on; with one "
                "layer the nine encoders' LayerNorms (18,432 parameters) are created but never used, so "
                "created_params exceeds params by that much. The release picks its best epoch on the test set; "
                "mcer-bench on validation.")

PRESETS: dict[str, Preset] = {
    "iemocap": Preset(
        options=dict(d=1024, heads=8, layers=1, ff=1024, dropout=0.5, temperature=1.0, gamma_ce=1.0, gamma_kl=1.0,
                     frozen_identity_gates=False),
        dims={"text": 1024, "audio": 1582, "video": 342}, task="classification", num_classes=6, num_speakers=2,
        recipe=dict(optimizer="adam", lr=1e-4, weight_decay=1e-5, epochs=150, patience=150, dialogue_batch_size=16,
                    grad_clip=None, lr_schedule="constant", class_weights=_IEMOCAP_CLASS_WEIGHTS),
        blocks=_BLOCKS,
        reference=Reference(**_RELEASED, config="exec_iemocap.sh + train.py (--lr 0.0001 --batch-size 16 --epochs 150 "
                                                "--temp 1; hidden_dim 1024, n_head 8, dropout 0.5, class weights)",
                            params=79_669_272, created_params=79_687_704,
                            blocks=_reference_blocks(1582, 2, 6), notes=_UNUSED_NOTE),
    ),
    "meld": Preset(
        options=dict(d=1024, heads=8, layers=1, ff=1024, dropout=0.5, temperature=8.0, gamma_ce=1.0, gamma_kl=1.0,
                     frozen_identity_gates=True),
        dims={"text": 1024, "audio": 300, "video": 342}, task="classification", num_classes=7, num_speakers=9,
        recipe=dict(optimizer="adam", lr=5e-6, weight_decay=1e-5, epochs=50, patience=50, dialogue_batch_size=8,
                    grad_clip=None, lr_schedule="constant", class_weights="none"),
        blocks=_BLOCKS,
        reference=Reference(**_RELEASED, config="exec_meld.sh + train.py (--lr 0.000005 --batch-size 8 --epochs 50 "
                                                "--temp 8; identity-initialised frozen unimodal gates)",
                            params=78_367_772, created_params=78_386_204,
                            blocks=_reference_blocks(300, 9, 7),
                            notes=_UNUSED_NOTE + " The nine frozen gates (9,437,184) count as parameters but are "
                                                 "not trained (68,949,020 trainable in the release)."),
    ),
}


@MODELS.register("sdt", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "d": Choice([32, 64])},
                 level="dialogue", modalities=["text", "audio", "video"],
                 paper="Ma et al. 2023, A Transformer-Based Model With Self-Distillation for Multimodal Emotion "
                       "Recognition in Conversations", presets=PRESETS)
class SDT(BenchModel):
    """Intra- and inter-modal transformers, hierarchical gated fusion, self-distillation."""

    level = "dialogue"
    pooling = "mean"

    def __init__(self, spec: DataSpec, d: PositiveInt = 32, heads: PositiveInt = 4, layers: PositiveInt = 1,
                 ff: PositiveInt | None = None, dropout: DropoutRate = 0.1, temperature: PositiveFloat = 1.0,
                 gamma_ce: NonNegativeFloat = 1.0, gamma_kl: NonNegativeFloat = 1.0,
                 frozen_identity_gates: bool = False) -> None:
        super().__init__(spec)
        ff = d if ff is None else ff
        if d % heads:
            raise ValueError(f"sdt: d ({d}) must be divisible by heads ({heads})")
        mods = list(spec.dims)
        self.d = d
        self.gamma_ce, self.gamma_kl, self.temperature = gamma_ce, gamma_kl, temperature
        self.speaker_embeddings = nn.Embedding(spec.num_speakers + 1, d, padding_idx=spec.num_speakers)
        self.proj = nn.ModuleDict({m: nn.Linear(dim, d, bias=False) for m, dim in spec.dims.items()})
        pairs = [f"{a}_to_{b}" for b in mods for a in mods]
        self.encoders = nn.ModuleDict({
            k: nn.ModuleList([EncoderLayer(d, heads, ff, dropout, norm_query=i > 0) for i in range(layers)])
            for k in pairs
        })
        self.gates = nn.ModuleDict({k: nn.Linear(d, d, bias=False) for k in pairs})
        if frozen_identity_gates:
            for gate in self.gates.values():
                gate.weight.data.copy_(torch.eye(d))
                gate.weight.requires_grad_(False)
        self.reduce = nn.ModuleDict({b: nn.Linear(len(mods) * d, d) for b in mods})
        self.last_gate = nn.Linear(d, d, bias=False)
        self.students = nn.ModuleDict({b: nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(d, spec.output_dim))
                                       for b in mods})
        self.teacher = nn.Linear(d, spec.output_dim)
        self.dropout = nn.Dropout(dropout)

    def encode(self, key: str, source: torch.Tensor, target: torch.Tensor, extra: torch.Tensor,
               pad: torch.Tensor) -> torch.Tensor:
        """One (source -> target) encoder: ``[B, N, d]`` inputs, ``extra`` = positions + speakers."""
        if source is target:  # intra-modal: one input, queries and keys alike
            x = self.dropout(target + extra)
            for layer in self.encoders[key]:
                x = layer(x, None, pad)
            return x
        kv, x = self.dropout(source + extra), self.dropout(target + extra)
        for layer in self.encoders[key]:
            x = layer(x, kv, pad)
        return x

    def forward(self, batch: DialogueBatch) -> ModelOutput:
        mods = list(self.spec.dims)
        s = self.spec.num_speakers
        if int(batch.speakers.max()) >= s:
            raise ValueError(f"sdt: speaker id {int(batch.speakers.max())} >= spec.num_speakers={s}")
        pad = ~batch.mask
        speakers = batch.speakers.masked_fill(pad, s)  # the padding row of the embedding (zeros)
        x = {m: self.proj[m](batch.inputs[m]) for m in mods}
        n = batch.mask.shape[1]
        extra = interleaved_positions(n, self.d, x[mods[0]].device, x[mods[0]].dtype) + self.speaker_embeddings(speakers)
        reps = {}
        for b in mods:
            parts = []
            for a in [b] + [m for m in mods if m != b]:
                key = f"{a}_to_{b}"
                h = self.encode(key, x[a], x[b], extra, pad)
                parts.append(torch.sigmoid(self.gates[key](h)) * h)
            reps[b] = self.reduce[b](torch.cat(parts, dim=-1))  # [B, N, d]
        stacked = torch.stack([reps[b] for b in mods], dim=2)  # [B, N, M, d]
        weights = torch.softmax(self.last_gate(stacked), dim=2)  # over modalities, per feature
        fused = (weights * stacked).sum(2)
        teacher = squeeze_regression(self.teacher(fused), self.spec)
        students = {b: squeeze_regression(self.students[b](reps[b]), self.spec) for b in mods}
        return ModelOutput(teacher, extras={"students": students, "modality_weights": weights})

    def loss(self, output: ModelOutput, batch: Batch, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher task loss + ``gamma_ce`` x students' task losses + ``gamma_kl`` x distillation (see the module doc)."""
        total = self.task_loss(output.prediction, batch, class_weights)
        students = output.extras.get("students", {})
        if not students:
            return total
        assert isinstance(batch, DialogueBatch)
        teacher = output.prediction.float()[batch.mask]
        n_real = teacher.shape[0]
        t = self.temperature
        ce = kl = total.new_zeros(())
        for pred in students.values():
            ce = ce + self.task_loss(pred, batch, class_weights)
            s = pred.float()[batch.mask]
            if self.spec.task == "classification":
                kl = kl + F.kl_div(F.log_softmax(s / t, -1), F.softmax(teacher / t, -1), reduction="sum") / n_real
            else:
                kl = kl + F.mse_loss(s, teacher)
        return total + self.gamma_ce * ce + self.gamma_kl * kl
