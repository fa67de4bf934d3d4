"""SDT (Ma et al. 2023, "A Transformer-Based Model With Self-Distillation for Multimodal Emotion
Recognition in Conversations", IEEE Transactions on Multimedia).

Architecture as in the paper: every modality's utterance vectors are layer-normalised (an
addition: the modalities' scales differ widely) and projected to width ``d`` (a kernel-1 temporal convolution), and sinusoidal positions and a learned speaker
embedding are added. **Intra-modal** transformers (self-attention within a modality) and
**inter-modal** transformers (queries from the target modality, keys/values from a source
modality) give, for every target modality, one sequence per source. **Hierarchical gated
fusion**: each of those sequences is gated (``sigmoid(W h) * h``), the gated sequences of a
target are concatenated and linearly projected (intra- and inter-modal fusion), then a
softmax gate over modalities weights and sums the modality representations (multimodal
fusion). The fused representation feeds the emotion classifier (the *teacher*). **Self-
distillation**: one *student* classifier per modality, on that modality's representation,
is trained with the task loss (hard labels) and a KL divergence to the teacher's softened
distribution at temperature ``temperature`` (scaled by T^2); the teacher is detached in the
KL term. For regression the students use L1 to the target and MSE to the teacher's score.
The students' losses are added in :meth:`loss` (they need the labels); ``forward`` exposes
the students' outputs as ``extras["students"]``.

Keys at padding utterances are masked in every attention, so predictions do not depend on
the batch. Defaults: ``d=32``, ``heads=4``, ``layers=1`` (the paper uses d = 1024 with 8
heads, one layer; scaled down for the CPU on small data), ``dropout=0.1``, ``gamma_ce=1``,
``gamma_kl=1``, ``temperature=1`` (the paper tunes the loss weights and the temperature per
dataset; 1 is the neutral choice). Dialogue level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.collate import Batch, DialogueBatch
from harness.data.types import DataSpec
from harness.layers import CrossAttentionLayer, sinusoidal_positions
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.registry import MODELS


@MODELS.register("sdt", level="dialogue", modalities=["text", "audio", "video"],
                 paper="Ma et al. 2023, A Transformer-Based Model With Self-Distillation for Multimodal Emotion "
                       "Recognition in Conversations")
class SDT(BenchModel):
    """Intra- and inter-modal transformers, hierarchical gated fusion, self-distillation."""

    level = "dialogue"
    pooling = "mean"

    def __init__(self, spec: DataSpec, d: int = 32, heads: int = 4, layers: int = 1, dropout: float = 0.1,
                 gamma_ce: float = 1.0, gamma_kl: float = 1.0, temperature: float = 1.0) -> None:
        super().__init__(spec)
        for name, v in (("d", d), ("heads", heads), ("layers", layers)):
            if v < 1:
                raise ValueError(f"sdt: {name} must be >= 1, got {v}")
        if d % heads:
            raise ValueError(f"sdt: d ({d}) must be divisible by heads ({heads})")
        if temperature <= 0:
            raise ValueError(f"sdt: temperature must be > 0, got {temperature}")
        if gamma_ce < 0 or gamma_kl < 0:
            raise ValueError(f"sdt: gamma_ce and gamma_kl must be >= 0, got {gamma_ce}, {gamma_kl}")
        mods = list(spec.dims)
        self.d = d
        self.gamma_ce, self.gamma_kl, self.temperature = gamma_ce, gamma_kl, temperature
        self.norms = nn.ModuleDict({m: nn.LayerNorm(dim) for m, dim in spec.dims.items()})  # modality scales differ
        self.proj = nn.ModuleDict({m: nn.Conv1d(dim, d, kernel_size=1, bias=False) for m, dim in spec.dims.items()})
        self.speaker = nn.Embedding(spec.num_speakers, d)
        self.blocks = nn.ModuleDict({
            f"{a}_to_{b}": nn.ModuleList([CrossAttentionLayer(d, heads, dropout) for _ in range(layers)])
            for b in mods for a in mods
        })
        self.gates = nn.ModuleDict({k: nn.Linear(d, d) for k in self.blocks})
        self.intra_fuse = nn.ModuleDict({b: nn.Linear(d * len(mods), d) for b in mods})
        self.modality_gate = nn.ModuleDict({b: nn.Linear(d, 1) for b in mods})
        self.teacher = nn.Sequential(nn.Dropout(dropout), nn.Linear(d, spec.output_dim))
        self.students = nn.ModuleDict({b: nn.Linear(d, spec.output_dim) for b in mods})
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch: DialogueBatch) -> ModelOutput:
        mods = list(self.spec.dims)
        if int(batch.speakers.max()) >= self.spec.num_speakers:
            raise ValueError(f"sdt: speaker id {int(batch.speakers.max())} >= spec.num_speakers={self.spec.num_speakers}")
        pad = ~batch.mask
        h = {}
        for m in mods:
            x = self.proj[m](self.norms[m](batch.inputs[m]).transpose(1, 2)).transpose(1, 2)  # [B, N, d]
            pos = sinusoidal_positions(x.shape[1], self.d, x.device, x.dtype)
            h[m] = self.dropout(x + pos + self.speaker(batch.speakers))
        reps = {}
        for b in mods:
            parts = []
            for a in mods:
                key = f"{a}_to_{b}"
                z = h[b]
                for layer in self.blocks[key]:
                    z = layer(z, h[a], pad)
                parts.append(torch.sigmoid(self.gates[key](z)) * z)
            reps[b] = self.intra_fuse[b](torch.cat(parts, dim=-1))  # [B, N, d]
        stacked = torch.stack([reps[b] for b in mods], dim=2)  # [B, N, M, d]
        weights = torch.softmax(torch.cat([self.modality_gate[b](reps[b]) for b in mods], dim=-1), dim=-1)
        fused = (weights.unsqueeze(-1) * stacked).sum(2)
        teacher = squeeze_regression(self.teacher(fused), self.spec)
        students = {b: squeeze_regression(self.students[b](reps[b]), self.spec) for b in mods}
        return ModelOutput(teacher, extras={"students": students, "modality_weights": weights})

    def loss(self, output: ModelOutput, batch: Batch, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher task loss + ``gamma_ce`` x students' task loss + ``gamma_kl`` x distillation loss."""
        total = self.task_loss(output.prediction, batch, class_weights)
        students = output.extras.get("students", {})
        if not students:
            return total
        assert isinstance(batch, DialogueBatch)
        teacher = output.prediction.detach().float()[batch.mask]
        t = self.temperature
        ce = kl = total.new_zeros(())
        for pred in students.values():
            ce = ce + self.task_loss(pred, batch, class_weights)
            s = pred.float()[batch.mask]
            if self.spec.task == "classification":
                kl = kl + F.kl_div(F.log_softmax(s / t, -1), F.softmax(teacher / t, -1), reduction="batchmean") * t * t
            else:
                kl = kl + F.mse_loss(s, teacher)
        return total + self.gamma_ce * ce + self.gamma_kl * kl
