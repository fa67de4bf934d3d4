"""DialogueRNN (Majumder et al. 2019, "DialogueRNN: An Attentive RNN for Emotion Detection in
Conversations", AAAI), as released in declare-lab/conv-emotion (``DialogueRNN/model.py``,
``BiModel``, built as ``train_IEMOCAP.py`` / ``train_MELD.py`` build it).

Architecture (the released code). The utterance vector ``u_t`` is the concatenation of the
modalities named by ``modalities`` (no projection, no normalisation). One *cell* runs over the
dialogue, one step per utterance, with speaker ``s = s(t)``:

- global state ``g_t = GRU_G([u_t ; q_{s,t-1}], g_{t-1})`` (width ``global_size``), then dropout
  ``rec_dropout``; the dropped ``g_t`` is what later steps attend to;
- context ``c_t``: attention of ``u_t`` over ``g_1..g_{t-1}`` (``c_1 = 0``), ``context_attention``:
  ``"general"`` ``softmax(W u_t . g_k)``, ``"general2"`` the same with a bias, ``"dot"``
  ``softmax(u_t . g_k)``, ``"simple"`` ``softmax(w . g_k)``, ``"concat"``
  ``softmax(v . tanh(W [g_k ; u_t]))`` (width ``attention_size``);
- party state of the speaker ``q_{s,t} = GRU_P([u_t ; c_t], q_{s,t-1})`` (width ``party_size``),
  dropout ``rec_dropout``; listeners keep theirs, or with ``listener_state=True`` update with
  ``GRU_L([u_t ; q_{s,t}], q_{l,t-1})``;
- emotion state ``e_t = GRU_E(q_{s,t}, e_{t-1})`` (width ``emotion_size``), dropout ``rec_dropout``.

With ``bidirectional=True`` (BiModel) a second cell with its own weights runs over each dialogue
reversed within its own length; both emotion sequences get dropout ``emotion_dropout``
(the release: ``dropout + 0.15``) and are concatenated. With ``matching_attention=True`` every
utterance then attends over the dialogue's emotion states (``softmax_s((W e_t + b) . e_s)``,
real ``s`` only), so a prediction depends on the whole dialogue; ``ReLU(Linear(-> dirs * hidden))``,
dropout ``dropout``, and the output layer follow (``dirs`` = 2 when bidirectional).

Every step of the forward cell reads only earlier real steps of its own dialogue, and the
backward cell reverses each dialogue within its length, so predictions do not depend on the
batch. Party states are indexed by speaker id ``0..spec.num_speakers-1``.

Defaults (no preset): every state of width ``hidden=32``, attention ``"general"``, dropout 0.1,
rec_dropout 0.1: small for the CPU, not the paper's configuration. ``preset="iemocap"``
(text 100; D_g = D_p = 500, D_e = D_h = 300) and ``preset="meld"`` (text 600 + audio 300;
150 / 150 / 100 / 100) give the released configurations.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from harness.data.collate import DialogueBatch
from harness.data.types import DataSpec
from harness.layers import MatchingAttention, input_modalities
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.options import DropoutRate, PositiveInt
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import Choice, LogUniform, Uniform

ContextAttentionKind = Literal["simple", "dot", "general", "general2", "concat"]


class ContextAttention(nn.Module):
    """Attention of the current utterance over the earlier global states (the cell's context).

    ``history``: ``[B, T, D_g]`` (``T >= 1``); ``u``: ``[B, D_m]``. Returns ``[B, D_g]``.
    """

    def __init__(self, kind: str, utterance_dim: int, global_dim: int, attention_size: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "simple":
            self.scalar = nn.Linear(global_dim, 1, bias=False)
        elif kind in ("general", "general2"):
            self.transform = nn.Linear(utterance_dim, global_dim, bias=kind == "general2")
        elif kind == "concat":
            self.transform = nn.Linear(utterance_dim + global_dim, attention_size, bias=False)
            self.vector_prod = nn.Linear(attention_size, 1, bias=False)

    def forward(self, history: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        if self.kind == "simple":
            scores = self.scalar(history).squeeze(-1)
        elif self.kind == "dot":
            scores = torch.einsum("bd,btd->bt", u, history)
        elif self.kind == "concat":
            pairs = torch.cat([history, u[:, None, :].expand(-1, history.shape[1], -1)], dim=-1)
            scores = self.vector_prod(torch.tanh(self.transform(pairs))).squeeze(-1)
        else:
            scores = torch.einsum("bd,btd->bt", self.transform(u), history)
        return torch.einsum("bt,btd->bd", torch.softmax(scores, dim=-1), history)


class DialogueCell(nn.Module):
    """One direction of DialogueRNN: the global, party, (listener) and emotion GRUs, unrolled
    over the utterances. ``u``: ``[B, N, D_m]``; ``speakers``: long ``[B, N]``. Returns the
    emotion states ``[B, N, D_e]`` (after ``rec_dropout``)."""

    def __init__(self, utterance_dim: int, global_size: int, party_size: int, emotion_size: int,
                 context_attention: str, attention_size: int, listener_state: bool, rec_dropout: float) -> None:
        super().__init__()
        self.global_size, self.party_size, self.emotion_size = global_size, party_size, emotion_size
        self.g_cell = nn.GRUCell(utterance_dim + party_size, global_size)
        self.p_cell = nn.GRUCell(utterance_dim + global_size, party_size)
        self.e_cell = nn.GRUCell(party_size, emotion_size)
        self.l_cell = nn.GRUCell(utterance_dim + party_size, party_size) if listener_state else None
        self.attention = ContextAttention(context_attention, utterance_dim, global_size, attention_size)
        self.dropout = nn.Dropout(rec_dropout)

    def forward(self, u: torch.Tensor, speakers: torch.Tensor, num_parties: int) -> torch.Tensor:
        b, n, _ = u.shape
        rows = torch.arange(b, device=u.device)
        q = u.new_zeros(b, num_parties, self.party_size)
        g = u.new_zeros(b, self.global_size)
        e = u.new_zeros(b, self.emotion_size)
        history: list[torch.Tensor] = []
        emotions = []
        for t in range(n):
            u_t, spk = u[:, t], speakers[:, t]
            q_s = q[rows, spk]
            g = self.dropout(self.g_cell(torch.cat([u_t, q_s], dim=-1), g))
            c = self.attention(torch.stack(history, dim=1), u_t) if history else u.new_zeros(b, self.global_size)
            history.append(g)
            q_new = self.dropout(self.p_cell(torch.cat([u_t, c], dim=-1), q_s))  # the speaker's new state
            speaking = nn.functional.one_hot(spk, num_parties).to(u.dtype).unsqueeze(-1)  # [B, S, 1]
            if self.l_cell is not None:
                listen_in = torch.cat([u_t, q_new], dim=-1)[:, None, :].expand(-1, num_parties, -1)
                listeners = self.l_cell(listen_in.reshape(b * num_parties, -1), q.reshape(b * num_parties, -1))
                listeners = self.dropout(listeners).view(b, num_parties, -1)
            else:
                listeners = q
            q = listeners * (1 - speaking) + q_new[:, None, :] * speaking
            e = self.dropout(self.e_cell(q_new, e))
            emotions.append(e)
        return torch.stack(emotions, dim=1)


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[b]`` steps of ``x[b]`` (``[B, N, ...]``), padding stays at the end.

    Its own inverse."""
    n = x.shape[1]
    t = torch.arange(n, device=x.device)[None, :]
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # [B, N]
    return torch.gather(x, 1, idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x))


_RELEASED = dict(repo="declare-lab/conv-emotion", path="DialogueRNN/model.py", commit="6128ca2")
_IEMOCAP_CLASS_WEIGHTS = [1 / 0.086747, 1 / 0.144406, 1 / 0.227883, 1 / 0.160585, 1 / 0.127711, 1 / 0.252668]
_NOTES = "The release picks its best epoch on the test set; mcer-bench on validation."


def _blocks(prefix_cell: str = "dialogue_cell") -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for direction in ("f", "r"):
        for part in ("g_cell", "p_cell", "e_cell", "attention"):
            out[f"dialog_rnn_{direction}.{prefix_cell}.{part}"] = (f"dialog_rnn_{direction}.{part}",)
    return out


PRESETS: dict[str, Preset] = {
    "iemocap": Preset(
        options=dict(hidden=300, global_size=500, party_size=500, emotion_size=300, context_attention="general",
                     attention_size=100, listener_state=False, bidirectional=True, matching_attention=True,
                     dropout=0.1, rec_dropout=0.1, emotion_dropout=0.25, modalities=("text",)),
        dims={"text": 100, "audio": 100, "video": 512}, task="classification", num_classes=6, num_speakers=2,
        recipe=dict(optimizer="adam", lr=1e-4, weight_decay=1e-5, epochs=60, patience=60, dialogue_batch_size=30,
                    grad_clip=None, lr_schedule="constant", class_weights=_IEMOCAP_CLASS_WEIGHTS),
        blocks=_blocks(),
        reference=Reference(
            **_RELEASED, config="train_IEMOCAP.py (argparse defaults: --attention general, --class-weight on, "
                                "att2=True; IEMOCAP_features_raw.pkl, text only)",
            params=8_880_406,
            blocks={**{k: v for d in ("f", "r") for k, v in {
                f"dialog_rnn_{d}.dialogue_cell.g_cell": 1_653_000, f"dialog_rnn_{d}.dialogue_cell.p_cell": 1_653_000,
                f"dialog_rnn_{d}.dialogue_cell.e_cell": 721_800, f"dialog_rnn_{d}.dialogue_cell.attention": 50_000,
            }.items()}, "linear": 360_600, "matchatt": 360_600, "smax_fc": 3_606},
            notes=_NOTES),
    ),
    "meld": Preset(
        options=dict(hidden=100, global_size=150, party_size=150, emotion_size=100, context_attention="general",
                     attention_size=100, listener_state=False, bidirectional=True, matching_attention=True,
                     dropout=0.1, rec_dropout=0.1, emotion_dropout=0.25, modalities=("text", "audio")),
        dims={"text": 600, "audio": 300}, task="classification", num_classes=7, num_speakers=9,
        recipe=dict(optimizer="adam", lr=5e-4, weight_decay=1e-5, epochs=100, patience=100, dialogue_batch_size=30,
                    grad_clip=None, lr_schedule="constant", class_weights="none"),
        blocks=_blocks(),
        reference=Reference(
            **_RELEASED,
            config="train_MELD.py (script constants: feature_type multimodal = text 600 + audio 300, emotion, "
                   "7 classes, class_weight False; MELD_features_raw.pkl)",
            params=2_666_607,
            blocks={**{k: v for d in ("f", "r") for k, v in {
                f"dialog_rnn_{d}.dialogue_cell.g_cell": 540_900, f"dialog_rnn_{d}.dialogue_cell.p_cell": 540_900,
                f"dialog_rnn_{d}.dialogue_cell.e_cell": 75_600, f"dialog_rnn_{d}.dialogue_cell.attention": 135_000,
            }.items()}, "linear": 40_200, "matchatt": 40_200, "smax_fc": 1_407},
            notes=_NOTES),
    ),
}


@MODELS.register("dialoguernn", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "hidden": Choice([32, 64])},
                 level="dialogue", modalities=["text", "audio", "video"],
                 paper="Majumder et al. 2019, DialogueRNN: An Attentive RNN for Emotion Detection in Conversations",
                 presets=PRESETS)
class DialogueRNN(BenchModel):
    """Global, party and emotion GRUs over a conversation, both directions, matching attention."""

    level = "dialogue"
    pooling = "mean"

    def __init__(self, spec: DataSpec, hidden: PositiveInt = 32, global_size: PositiveInt | None = None,
                 party_size: PositiveInt | None = None, emotion_size: PositiveInt | None = None,
                 context_attention: ContextAttentionKind = "general", attention_size: PositiveInt = 100,
                 listener_state: bool = False, bidirectional: bool = True, matching_attention: bool = True,
                 dropout: DropoutRate = 0.1, rec_dropout: DropoutRate = 0.1, emotion_dropout: DropoutRate | None = None,
                 modalities: tuple[str, ...] | list[str] | None = None) -> None:
        super().__init__(spec)
        global_size = hidden if global_size is None else global_size
        party_size = hidden if party_size is None else party_size
        emotion_size = hidden if emotion_size is None else emotion_size
        if emotion_dropout is None:
            emotion_dropout = dropout + 0.15
            if emotion_dropout >= 1.0:  # the declared range holds for a value given, not for this one
                raise ValueError(f"dialoguernn: emotion_dropout defaults to dropout + 0.15 = {emotion_dropout:g}, "
                                 f"which must be below 1; give dropout < 0.85 or emotion_dropout")
        self.modalities = input_modalities(spec.dims, modalities, "dialoguernn")
        utterance_dim = sum(spec.dims[m] for m in self.modalities)
        if context_attention == "dot" and utterance_dim != global_size:
            raise ValueError(f"dialoguernn: context_attention 'dot' needs global_size == the utterance width "
                             f"{utterance_dim}, got global_size={global_size}")
        cell = dict(utterance_dim=utterance_dim, global_size=global_size, party_size=party_size,
                    emotion_size=emotion_size, context_attention=context_attention, attention_size=attention_size,
                    listener_state=listener_state, rec_dropout=rec_dropout)
        self.dialog_rnn_f = DialogueCell(**cell)
        self.dialog_rnn_r = DialogueCell(**cell) if bidirectional else None
        dirs = 2 if bidirectional else 1
        self.emotion_dropout = nn.Dropout(emotion_dropout)
        self.matchatt = MatchingAttention(dirs * emotion_size) if matching_attention else None
        self.linear = nn.Linear(dirs * emotion_size, dirs * hidden)
        self.dropout = nn.Dropout(dropout)
        self.smax_fc = nn.Linear(dirs * hidden, spec.output_dim)

    def forward(self, batch: DialogueBatch) -> ModelOutput:
        u = torch.cat([batch.inputs[m] for m in self.modalities], dim=-1)
        parties = self.spec.num_speakers
        if int(batch.speakers.max()) >= parties:
            raise ValueError(f"dialoguernn: speaker id {int(batch.speakers.max())} >= spec.num_speakers={parties}")
        emotions = self.emotion_dropout(self.dialog_rnn_f(u, batch.speakers, parties))
        if self.dialog_rnn_r is not None:
            lengths = batch.mask.long().sum(1)
            backward = self.dialog_rnn_r(reverse_within_length(u, lengths),
                                         reverse_within_length(batch.speakers, lengths), parties)
            backward = self.emotion_dropout(reverse_within_length(backward, lengths))
            emotions = torch.cat([emotions, backward], dim=-1)
        if self.matchatt is not None:
            emotions = self.matchatt(emotions, batch.mask)
        hidden = self.dropout(torch.relu(self.linear(emotions)))
        return ModelOutput(squeeze_regression(self.smax_fc(hidden), self.spec))
