"""Memory Fusion Network (Zadeh et al. 2018, "Memory Fusion Network for Multi-view Sequential
Learning", AAAI).

Architecture as in the paper, on aligned steps: the modalities are resampled to a common
length ``align_len`` (linear interpolation over each utterance's real frames, as
``early_fusion.resample`` does) since MFN's memory and attention work step by step. The
**System of LSTMs** runs one LSTM cell per modality. At each step the **Delta-memory
Attention Network** takes the cell states of the previous and current step of all LSTMs
``c^[t-1,t]``, computes softmax attention ``a = softmax(D_a(c^[t-1,t]))`` and the attended
``c_hat = a * c^[t-1,t]``. The **Multi-view Gated Memory** updates
``u_t = gamma1 * u_{t-1} + gamma2 * tanh(D_u(c_hat))`` with retain/update gates
``gamma_i = sigmoid(D_gamma_i([c_hat; u_{t-1}]))`` (the reference implementation's inputs).
The last hidden states of every LSTM and the final memory feed a two-layer ReLU output network.

Defaults: ``hidden=16`` per LSTM, ``mem=32``, attention/gate networks of width ``hidden * 2``,
``align_len=16``, ``dropout=0.2`` (the paper searches hidden 32..128 and memory 64..512;
these are small for the CPU on small data). Resampling makes every sample exactly
``align_len`` steps long, so predictions do not depend on the batch. Utterance level.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.early_fusion import resample
from harness.data.collate import UtteranceBatch
from harness.data.types import DataSpec
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.registry import MODELS


def _net(i: int, h: int, o: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Dropout(dropout), nn.Linear(h, o))


@MODELS.register("mfn", level="utterance", modalities=["text", "audio", "video"],
                 paper="Zadeh et al. 2018, Memory Fusion Network for Multi-view Sequential Learning")
class MFN(BenchModel):
    """LSTM per modality, delta-memory attention over cell states, multi-view gated memory."""

    level = "utterance"

    def __init__(self, spec: DataSpec, hidden: int = 16, mem: int = 32, align_len: int = 16,
                 dropout: float = 0.2) -> None:
        super().__init__(spec)
        for name, v in (("hidden", hidden), ("mem", mem), ("align_len", align_len)):
            if v < 1:
                raise ValueError(f"mfn: {name} must be >= 1, got {v}")
        mods = list(spec.dims)
        self.align_len, self.hidden, self.mem = align_len, hidden, mem
        self.norms = nn.ModuleDict({m: nn.LayerNorm(d) for m, d in spec.dims.items()})
        self.cells = nn.ModuleDict({m: nn.LSTMCell(d, hidden) for m, d in spec.dims.items()})
        c2 = 2 * hidden * len(mods)
        self.attention = _net(c2, 2 * hidden, c2, dropout)  # D_a
        self.update = _net(c2, 2 * hidden, mem, dropout)  # D_u
        self.gamma1 = _net(c2 + mem, 2 * hidden, mem, dropout)
        self.gamma2 = _net(c2 + mem, 2 * hidden, mem, dropout)
        final = hidden * len(mods) + mem
        self.out = _net(final, final, spec.output_dim, dropout)

    def forward(self, batch: UtteranceBatch) -> ModelOutput:
        mods = list(self.spec.dims)
        xs = {m: resample(self.norms[m](batch.inputs[m]), batch.lengths[m], self.align_len) for m in mods}
        b = xs[mods[0]].shape[0]
        ref = xs[mods[0]]
        h = {m: ref.new_zeros(b, self.hidden) for m in mods}
        c = {m: ref.new_zeros(b, self.hidden) for m in mods}
        u = ref.new_zeros(b, self.mem)
        for t in range(self.align_len):
            prev = torch.cat([c[m] for m in mods], dim=-1)
            for m in mods:
                h[m], c[m] = self.cells[m](xs[m][:, t], (h[m], c[m]))
            both = torch.cat([prev, torch.cat([c[m] for m in mods], dim=-1)], dim=-1)
            c_hat = torch.softmax(self.attention(both), dim=-1) * both
            gate_in = torch.cat([c_hat, u], dim=-1)
            u = torch.sigmoid(self.gamma1(gate_in)) * u + torch.sigmoid(self.gamma2(gate_in)) * torch.tanh(self.update(c_hat))
        final = torch.cat([h[m] for m in mods] + [u], dim=-1)
        return ModelOutput(squeeze_regression(self.out(final), self.spec))
