"""DialogueRNN (Majumder et al. 2019, "DialogueRNN: An Attentive RNN for Emotion Detection in
Conversations", AAAI).

Architecture as in the paper: the utterance representation ``u_t`` (here the concatenated
modality vectors through a linear layer, the paper's multimodal setting) drives three GRUs:
the **global GRU** ``g_t = GRU_G(g_{t-1}, u_t (+) q_{s(t), t-1})``; an attention over the
previous global states ``alpha = softmax(u_t^T W_alpha [g_1..g_{t-1}])`` gives the context
``c_t``; the **party GRU** updates the speaker's state ``q_{s,t} = GRU_P(q_{s,t-1}, u_t (+) c_t)``
(listeners keep theirs, the paper's default variant); the **emotion GRU**
``e_t = GRU_E(e_{t-1}, q_{s(t),t})`` feeds a ReLU layer and the output layer. Every step
attends only to earlier steps of its own dialogue, so padding (which only follows the real
utterances) never changes a real prediction.

Defaults: ``hidden=32`` for the global, party and emotion states (the paper uses
D_g = D_p = D_e = 150 / 100; 32 is small for the CPU), ``dropout=0.25`` (the paper's
0.1..0.25). Speaker ids index party states, ``0..spec.num_speakers-1``. Dialogue level.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data.collate import DialogueBatch
from harness.data.types import DataSpec
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.registry import MODELS


@MODELS.register("dialoguernn", level="dialogue", modalities=["text", "audio", "video"],
                 paper="Majumder et al. 2019, DialogueRNN: An Attentive RNN for Emotion Detection in Conversations")
class DialogueRNN(BenchModel):
    """Global, party and emotion GRUs over a conversation, one step per utterance."""

    level = "dialogue"
    pooling = "mean"

    def __init__(self, spec: DataSpec, hidden: int = 32, dropout: float = 0.25) -> None:
        super().__init__(spec)
        if hidden < 1:
            raise ValueError(f"dialoguernn: hidden must be >= 1, got {hidden}")
        total = sum(spec.dims.values())
        self.hidden = hidden
        self.norms = nn.ModuleDict({m: nn.LayerNorm(d) for m, d in spec.dims.items()})  # per modality: scales differ
        self.utterance = nn.Linear(total, hidden)
        self.global_gru = nn.GRUCell(2 * hidden, hidden)
        self.attn = nn.Linear(hidden, hidden, bias=False)  # W_alpha
        self.party_gru = nn.GRUCell(2 * hidden, hidden)
        self.emotion_gru = nn.GRUCell(hidden, hidden)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, spec.output_dim))

    def forward(self, batch: DialogueBatch) -> ModelOutput:
        u_all = self.utterance(torch.cat([self.norms[m](batch.inputs[m]) for m in self.spec.dims], dim=-1))  # [B, N, H]
        b, n, h = u_all.shape
        s = self.spec.num_speakers
        if int(batch.speakers.max()) >= s:
            raise ValueError(f"dialoguernn: speaker id {int(batch.speakers.max())} >= spec.num_speakers={s}")
        rows = torch.arange(b, device=u_all.device)
        q = u_all.new_zeros(b, s, h)
        e = u_all.new_zeros(b, h)
        globals_: list[torch.Tensor] = []
        emotions = []
        for t in range(n):
            u = u_all[:, t]
            spk = batch.speakers[:, t]
            q_s = q[rows, spk]
            if globals_:
                g_hist = torch.stack(globals_, dim=1)  # [B, t, H]
                alpha = torch.softmax(torch.einsum("bh,bth->bt", self.attn(u), g_hist), dim=-1)
                c = torch.einsum("bt,bth->bh", alpha, g_hist)
                g_prev = globals_[-1]
            else:
                c = torch.zeros_like(u)
                g_prev = torch.zeros_like(u)
            globals_.append(self.global_gru(torch.cat([u, q_s], dim=-1), g_prev))
            q_new = self.party_gru(torch.cat([u, c], dim=-1), q_s)
            onehot = torch.nn.functional.one_hot(spk, s).to(q.dtype).unsqueeze(-1)  # [B, S, 1]
            q = q * (1 - onehot) + onehot * q_new.unsqueeze(1)
            e = self.emotion_gru(q_new, e)
            emotions.append(e)
        out = self.classifier(torch.stack(emotions, dim=1))
        return ModelOutput(squeeze_regression(out, self.spec))
