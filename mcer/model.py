"""The MCER fusion model and its reference preset, registered as ``mcer`` and ``mcer-reference``.

Pipeline (``B`` dialogues, ``N`` utterances, ``H`` hidden):

1. ``Linear(D_m -> H)`` per modality; speaker embedding + positional encoding on audio and video.
2. Audio and video: denoising encoder (``denoiser``), then filter gates (``filter_gates``).
3. Text: relation-aware graph attention over the speaker subgraphs (``graphs``).
4. Cross-modal fusion (``fusion``); per-modality heads; fused prediction
   ``w_t l_t + w_a l_a + w_v l_v`` (``logit_weights``).
5. Loss: task loss on the fused prediction + ``aux_weight * sum_m L_m^2`` (``aux_loss``).

``mcer`` fixes the reference's padding leaks (key masks everywhere, non-cyclic shift, masked
temporal convolution): a dialogue's predictions do not depend on what it is batched with.
``mcer-reference`` reproduces the released code's architecture (``preset="iemocap"|"meld"``),
including those leaks, for parameter-count and speed comparisons.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from harness.data.collate import DialogueBatch
from harness.data.types import DataSpec
from harness.models import BenchModel, ModelOutput
from harness.options import DropoutRate, NonNegativeInt, PositiveInt
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import Choice, LogUniform, Uniform
from mcer._dropout import Dropout
from mcer.ablation import ABLATION_SETS
from mcer.denoise import AttentionScale, AttentionVariant, DenoisingEncoder
from mcer.encodings import InputProjection, Positional, PositionalEncoding, SpeakerEmbedding
from mcer.fusion import CrossModalDiffusion, FusionMode
from mcer.gates import FilterGate
from mcer.graph import GraphOption, SpeakerGraphs
from mcer.heads import MODS, HeadActivation, ModalityHeads, mcer_loss
from mcer.recompute import recomputed

Denoiser = AttentionVariant | Literal["none"]
"""The ``denoiser`` option: an attention variant of the denoising encoder, or none."""
LogitWeights = tuple[float, float, float]
"""(text, audio, video) weights of the fused prediction."""


class MCER(BenchModel):
    """MCER: differential denoising + relation-aware graphs + text-guided cross-modal diffusion.

    Options (each an ablation switch or a tuned constant of the reference, exposed as config):

    - ``hidden`` H, ``heads`` (denoiser attention), ``fusion_heads`` (fusion block; default = heads),
      ``dropout`` (encoders, fusion, heads), ``graph_dropout`` (RGAT).
    - ``denoiser``: ``"diff-shift"`` (shifted-key differential attention) | ``"diff-dual"`` (Ye et
      al. 2024) | ``"standard"`` (ordinary attention) | ``"none"`` (no denoising encoder).
    - ``graphs``: ``"both"`` | ``"intra"`` | ``"inter"`` | ``"unaware"`` (GAT without relation
      types) | ``"none"``; ``window``: edges within ``w`` utterances each side.
    - ``fusion``: ``"text-guided"`` | ``"symmetric"`` (the reference's MutualFormer) | ``"concat"``.
    - ``filter_gates``: sigmoid self-gates on denoised audio/video. ``aux_loss``, ``aux_weight``:
      per-modality auxiliary losses ``aux_weight * sum L_m^2``.
    - ``logit_weights``: (text, audio, video) weights of the fused prediction.
    - ``positional``: ``"rotary"`` | ``"sinusoidal"`` | ``"none"``; ``residual_scale`` c of the
      denoiser output ``x_pe + c z``; ``gelu_coef`` of the denoiser FFN (0.5 = GELU; reference
      MELD 0.66); ``head_activation``; ``head_residual`` (heads see fused + pre-fusion
      features); ``attn_scale``: ``"head"`` (1/sqrt(H/h)) or ``"model"`` (1/sqrt(H), reference).
    - ``reference_masking``: reproduce the reference's padding leaks (only for ``mcer-reference``).
    - ``recompute``: keep only each stage's inputs (graph blocks, denoisers, each modality's
      fusion update) and recompute its activations in the backward pass: less resident memory
      for one more forward of those stages. Results are the same (dropout masks are replayed).
    """

    level = "dialogue"
    pooling = "mean"

    def __init__(self, spec: DataSpec, hidden: PositiveInt = 128, heads: PositiveInt = 4,
                 fusion_heads: PositiveInt | None = None, dropout: DropoutRate = 0.3, graph_dropout: DropoutRate = 0.2,
                 denoiser: Denoiser = "diff-shift", graphs: GraphOption = "both", window: NonNegativeInt = 20,
                 fusion: FusionMode = "text-guided", filter_gates: bool = True, aux_loss: bool = True,
                 aux_weight: float = 0.1, logit_weights: LogitWeights = (1.0, 1.0, 0.4),
                 positional: Positional = "sinusoidal", residual_scale: float = 0.5, gelu_coef: float = 0.5,
                 head_activation: HeadActivation = "leaky_relu", head_residual: bool = True,
                 attn_scale: AttentionScale = "head", reference_masking: bool = False, recompute: bool = False) -> None:
        super().__init__(spec)
        missing = [m for m in MODS if m not in spec.dims]
        if missing:
            raise ValueError(f"mcer needs modalities {MODS}; DataSpec.dims lacks {missing} (has {sorted(spec.dims)})")
        self.options: dict[str, Any] = dict(denoiser=denoiser, graphs=graphs, fusion=fusion, filter_gates=filter_gates,
                                            aux_loss=aux_loss, logit_weights=tuple(logit_weights))
        self.aux_loss, self.aux_weight, self.head_residual = aux_loss, aux_weight, head_residual
        self.projection = InputProjection({m: spec.dims[m] for m in MODS}, hidden)
        self.speaker = SpeakerEmbedding(spec.num_speakers, hidden)
        self.positional = nn.ModuleDict(
            {m: PositionalEncoding(hidden, positional, reference_params=reference_masking) for m in ("audio", "video")}
        )
        self.pe_dropout = Dropout(dropout)
        self.denoisers = nn.ModuleDict()
        if denoiser != "none":
            for m in ("audio", "video"):
                self.denoisers[m] = DenoisingEncoder(hidden, heads, denoiser, dropout, residual_scale=residual_scale,
                                                     gelu_coef=gelu_coef, scale=attn_scale,
                                                     reference_masking=reference_masking)
        self.gates = nn.ModuleDict({m: FilterGate(hidden) for m in ("audio", "video")}) if filter_gates else None
        self.graphs = SpeakerGraphs(hidden, graphs, window, heads=2, dropout=graph_dropout)
        self.fusion = CrossModalDiffusion(hidden, fusion_heads or heads, fusion, dropout=dropout,
                                          key_mask=not reference_masking)
        self.heads = ModalityHeads(hidden, spec.output_dim, tuple(logit_weights), head_activation, dropout)
        self.recompute = recompute

    @property
    def recompute(self) -> bool:
        """Whether the graph blocks, denoisers and fusion updates recompute their activations in
        the backward pass; settable (e.g. to count a step's FLOPs without the recomputation)."""
        return self._recompute

    @recompute.setter
    def recompute(self, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise ValueError(f"mcer: recompute must be True or False, got {enabled!r}")
        self._recompute = self.graphs.recompute = self.fusion.recompute = enabled

    def forward(self, batch: DialogueBatch) -> ModelOutput:
        if not isinstance(batch, DialogueBatch):
            raise TypeError(f"mcer is a dialogue-level model; expected a DialogueBatch, got {type(batch).__name__}")
        mask = batch.mask
        feats = self.projection(batch.inputs)
        spk = self.speaker(batch.speakers, mask)
        pre = {"text": self.graphs(feats["text"], batch.speakers, mask)}
        for m in ("audio", "video"):
            x_pe = self.pe_dropout(self.positional[m](feats[m], spk))
            z = recomputed(self.denoisers[m], self.recompute, feats[m], x_pe, mask) if m in self.denoisers else x_pe
            pre[m] = self.gates[m](z) if self.gates is not None else z
        t, a, v = self.fusion(pre["text"], pre["audio"], pre["video"], mask)
        fused_feats = {"text": t, "audio": a, "video": v}
        if self.head_residual:
            fused_feats = {m: fused_feats[m] + pre[m] for m in MODS}
        logits, fused = self.heads(fused_feats)
        if self.spec.task == "regression":
            logits = {m: x.squeeze(-1) for m, x in logits.items()}
            fused = fused.squeeze(-1)
        return ModelOutput(prediction=fused, extras={"modality_predictions": logits})

    def loss(self, output: ModelOutput, batch: DialogueBatch, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Task loss on the fused prediction + ``aux_weight * sum_m L_m^2`` when ``aux_loss``."""
        per = output.extras.get("modality_predictions") if self.aux_loss else None
        return mcer_loss(lambda p: self.task_loss(p, batch, class_weights), output.prediction, per, self.aux_weight)


SEARCH_SPACE = {"lr": LogUniform(3e-4, 1e-2), "weight_decay": LogUniform(1e-6, 1e-3), "dropout": Uniform(0.0, 0.5),
                "hidden": Choice([32, 64, 128])}
"""What tuning may change in ``mcer`` (heads stays 4, which divides every hidden size here)."""

MODELS.register("mcer", level="dialogue", modalities=list(MODS), paper="arXiv 2603.25752",
                model_sets=ABLATION_SETS, search_space=SEARCH_SPACE)(MCER)

REFERENCE_FIXED = dict(denoiser="diff-shift", graphs="both", fusion="symmetric", filter_gates=True, aux_loss=True,
                       aux_weight=0.1, graph_dropout=0.2, attn_scale="model", reference_masking=True)
"""The released code's choices that are not sizes: fixed in ``mcer-reference``."""

_IEMOCAP_CLASS_WEIGHTS = [1 / 0.086747, 1 / 0.144406, 1 / 0.227883, 1 / 0.160585, 1 / 0.127711, 1 / 0.252668]


def _released(script: str, params: int, lr: float, epochs: int, **recipe: object) -> dict[str, object]:
    """The parts of a preset the released code fixes for every dataset: its training recipe
    (train.py: Adam with ``--l2`` weight decay, ``CosineAnnealingLR(T_max=50, eta_min=1e-6)``
    stepped once per epoch, batches of 16 dialogues, no gradient clipping) and its reference."""
    return dict(
        recipe=dict(optimizer="adam", lr=lr, weight_decay=5e-5, lr_schedule="cosine",
                    schedule_options={"T_max": 50, "eta_min": 1e-6}, epochs=epochs, dialogue_batch_size=16,
                    grad_clip=None, **recipe),
        reference=Reference(repo="liuying2023912/ReDiFu", path="model.py",
                            commit="b1cf3175bca1343f649f906f1ba763c1881f949a",
                            config=f"{script} (train.py for the recipe)", params=params,
                            notes="padding leaks kept (see mcer); the released script picks the epoch on test, "
                                  "mcer-bench on validation"),
    )


# IEMOCAP weights the NLL by the per-class constants above; MELD trains unweighted.
PRESETS: dict[str, Preset] = {
    "iemocap": Preset(
        options=dict(hidden=512, heads=64, fusion_heads=32, dropout=0.5, window=20, positional="rotary",
                     residual_scale=0.5, gelu_coef=0.5, head_activation="leaky_relu", head_residual=True,
                     logit_weights=(1.0, 1.0, 0.4)),
        dims={"text": 1024, "audio": 1582, "video": 342}, task="classification", num_classes=6, num_speakers=2,
        **_released("run_iemocap.sh", 45_632_150, lr=1e-4, epochs=50, class_weights=_IEMOCAP_CLASS_WEIGHTS),
    ),
    "meld": Preset(
        options=dict(hidden=256, heads=16, fusion_heads=16, dropout=0.6, window=25, positional="sinusoidal",
                     residual_scale=1.0, gelu_coef=0.66, head_activation="relu", head_residual=False,
                     logit_weights=(3.0, 1.0, 0.3)),
        dims={"text": 1024, "audio": 300, "video": 342}, task="classification", num_classes=7, num_speakers=9,
        **_released("run_meld.sh", 11_480_467, lr=5e-5, epochs=20),
    ),
}


@MODELS.register("mcer-reference", level="dialogue", modalities=list(MODS), paper="arXiv 2603.25752 (ReDiFu code)",
                 presets=PRESETS)
class MCERReference(MCER):
    """The released code's architecture, padding leaks included, at ``preset="iemocap"|"meld"``.

    IEMOCAP config (dims 1024/1582/342, 6 classes, 2 speakers): 45,632,150 parameters;
    MELD config (1024/300/342, 7 classes, 9 speakers): 11,480,467. Without a preset the sizes
    default to the IEMOCAP configuration on whatever dims the data has. The released code's
    non-size choices (``REFERENCE_FIXED``) cannot be changed here; use ``mcer`` for that.
    ``recompute`` (memory for compute, same results) is allowed: it changes no computation.
    """

    def __init__(self, spec: DataSpec, hidden: PositiveInt = 512, heads: PositiveInt = 64,
                 fusion_heads: PositiveInt | None = 32, dropout: DropoutRate = 0.5, window: NonNegativeInt = 20,
                 positional: Positional = "rotary", residual_scale: float = 0.5, gelu_coef: float = 0.5,
                 head_activation: HeadActivation = "leaky_relu", head_residual: bool = True,
                 logit_weights: LogitWeights = (1.0, 1.0, 0.4), recompute: bool = False) -> None:
        super().__init__(spec, hidden=hidden, heads=heads, fusion_heads=fusion_heads, dropout=dropout, window=window,
                         positional=positional, residual_scale=residual_scale, gelu_coef=gelu_coef,
                         head_activation=head_activation, head_residual=head_residual, logit_weights=logit_weights,
                         recompute=recompute, **REFERENCE_FIXED)
