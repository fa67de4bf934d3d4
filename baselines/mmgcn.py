"""MMGCN (Hu et al. 2021, "MMGCN: Multimodal Fusion via Deep Graph Convolution Network for
Emotion Recognition in Conversation", ACL), as released in hujingwen6666/MMGCN and run by its
``run.sh`` (``--graph_type MMGCN --mm_fusion_mthd concat_subsequently --modals avl --use_speaker``).

Architecture (the released code):

1. Modality encoders: audio and video each through ``Linear(D_m -> 2 hidden)``; text through
   ``Linear(D_t -> text_proj)`` and a ``lstm_layers``-layer bidirectional LSTM of width ``hidden``
   (dropout ``dropout`` between layers). With ``use_speaker`` a learned speaker embedding is
   added to the TEXT nodes only.
2. One graph per dialogue whose nodes are (modality, utterance) pairs, ``2 hidden`` wide:
   every pair of utterances of the same modality (self included) and the modalities of the
   same utterance are linked with weight ``1 - arccos(0.99999 cos(n_i, n_j)) / pi``; the network
   runs on ``P = D^-1/2 A D^-1/2``. Gradients flow through ``A`` into the node features.
3. GCNII (Chen et al. 2020, "variant" form) of ``layers`` layers: ``x = dropout(nodes)``,
   ``h0 = ReLU(Linear(x))`` (width ``graph_hidden``); layer ``l``: ``h = dropout(h)``,
   ``h = ReLU(theta_l [P h ; h0] W_l + (1 - theta_l)((1 - alpha) P h + alpha h0))`` with
   ``W_l`` ``[2 graph_hidden, graph_hidden]`` and ``theta_l = log(lamda / l + 1)``; then
   ``dropout(h)``; each node's output is ``[x ; h]``.
4. Per utterance the node outputs of all modalities (audio, video, text order) are
   concatenated, then dropout, ReLU and one output layer.
5. Loss: the task loss, or ``loss="focal-reference"``: the release's MELD ``FocalLoss``
   (``gamma`` 2.5, ``alpha`` 1) as coded: ``-alpha (1 - y_c log p_c)^gamma log p_c`` summed over
   EVERY class ``c`` (``y`` one-hot, so non-target classes keep weight 1) and averaged over
   utterances x classes; it takes no class weights.

The release builds its graph network with 64 layers whatever ``--Deep_GCN_nlayers`` says; the
presets do too. Differences from the released code, on purpose: the text LSTM runs on packed
sequences and padding utterances are not nodes, so predictions do not depend on the batch
(the release's LSTM reads the padding of longer dialogues). Modules the release creates but
never uses (its projections ``a_fc/v_fc/l_fc``, ``feature_fc``, ``final_fc``, modality and
per-modality speaker embeddings, the edge and gated attentions) are not created.

Defaults (no preset): ``hidden=32``, ``graph_hidden=hidden``, ``text_proj=2 hidden``,
``layers=4``, ``dropout=0.3``: small for the CPU, not the paper's configuration.
``preset="iemocap"`` / ``"meld"`` give the released configurations (64 layers, 100 / 100 / 200).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.collate import Batch, DialogueBatch
from harness.data.types import DataSpec
from harness.layers import dialogue_lengths, run_packed
from harness.models import BenchModel, ModelOutput, squeeze_regression
from harness.options import DropoutRate, PositiveFloat, PositiveInt, UnitInterval
from harness.presets import Preset, Reference
from harness.registry import MODELS
from harness.tuning import IntRange, LogUniform, Uniform


def angular_adjacency(nodes: torch.Tensor, structure: torch.Tensor) -> torch.Tensor:
    """``1 - arccos(0.99999 cos(n_i, n_j)) / pi`` where ``structure`` (bool ``[B, K, K]``) links
    nodes, 0 elsewhere, then ``D^-1/2 A D^-1/2``. ``nodes``: ``[B, K, d]``. Returns ``[B, K, K]``, at least float32.

    Computed in float32 even under autocast: in bf16/fp16 ``0.99999`` rounds to 1, and the
    derivative of ``arccos`` at 1 is infinite (NaN gradients at every self-loop).
    """
    with torch.autocast(device_type=nodes.device.type, enabled=False):
        unit = F.normalize(nodes.to(torch.promote_types(nodes.dtype, torch.float32)), dim=-1)
        cos = torch.einsum("bid,bjd->bij", unit, unit) * 0.99999  # the release's guard against acos(+-1)
        adj = (1 - torch.arccos(cos) / math.pi) * structure
        inv_sqrt = adj.sum(-1).clamp(min=1e-12).rsqrt()
        return inv_sqrt[:, :, None] * adj * inv_sqrt[:, None, :]


_RELEASED = dict(repo="hujingwen6666/MMGCN", path="model.py", commit="85732d9")
_IEMOCAP_CLASS_WEIGHTS = [1 / 0.086747, 1 / 0.144406, 1 / 0.227883, 1 / 0.160585, 1 / 0.127711, 1 / 0.252668]
_BLOCKS = {"linear_a": ("proj.audio",), "linear_v": ("proj.video",), "linear_l": ("proj.text",),
           "graph_model.graph_net.fcs": ("gcn_in",), "graph_model.graph_net.convs": ("gcn_layers",),
           "graph_model.speaker_embeddings": ("speaker_embeddings",)}
_UNUSED = ("Created but never used in its forward pass: edge attention att_model, gatedatt, graph_model.a_fc/"
           "v_fc/l_fc, feature_fc, final_fc, modal_embeddings, a/v/l_spk_embs. ")
_NOTES = ("The text LSTM reads padding in the release; packed here. The release picks its best epoch on the test "
          "set; mcer-bench on validation.")
_OPTIONS = dict(hidden=100, graph_hidden=100, text_proj=200, layers=64, alpha=0.1, lamda=0.5, dropout=0.4,
                lstm_layers=2, use_speaker=True)

PRESETS: dict[str, Preset] = {
    "iemocap": Preset(
        options=dict(_OPTIONS, loss="task"),
        dims={"text": 100, "audio": 1582, "video": 342}, task="classification", num_classes=6, num_speakers=2,
        recipe=dict(optimizer="adam", lr=3e-4, weight_decay=3e-5, epochs=20, patience=20, dialogue_batch_size=16,
                    grad_clip=None, lr_schedule="constant", class_weights=_IEMOCAP_CLASS_WEIGHTS),
        blocks=_BLOCKS,
        reference=Reference(
            **_RELEASED, config="run.sh line 1 (IEMOCAP: --dropout 0.4 --lr 0.0003 --batch-size 16 --l2 0.00003 "
                                "--epochs 20 --class-weight; MM_GCN built with nlayers=64)",
            params=2_194_506, created_params=2_702_015,
            blocks={"linear_a": 316_600, "linear_v": 68_600, "linear_l": 20_200, "lstm_l": 483_200,
                    "graph_model.graph_net.fcs": 20_100, "graph_model.graph_net.convs": 1_280_000,
                    "graph_model.speaker_embeddings": 400, "smax_fc": 5_406},
            notes=_UNUSED + _NOTES),
    ),
    "meld": Preset(
        options=dict(_OPTIONS, loss="focal-reference"),
        dims={"text": 600, "audio": 300, "video": 342}, task="classification", num_classes=7, num_speakers=9,
        recipe=dict(optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=60, patience=60, dialogue_batch_size=16,
                    grad_clip=None, lr_schedule="constant", class_weights="none"),
        blocks=_BLOCKS,
        reference=Reference(
            **_RELEASED, config="run.sh line 2 (MELD: --dropout 0.4 --lr 0.001 --batch-size 16 --l2 0.0 --epochs 60, "
                                "FocalLoss; MELD_features_raw1.pkl; MM_GCN built with nlayers=64)",
            params=2_040_407, created_params=2_552_217,
            blocks={"linear_a": 60_200, "linear_v": 68_600, "linear_l": 120_200, "lstm_l": 483_200,
                    "graph_model.graph_net.fcs": 20_100, "graph_model.graph_net.convs": 1_280_000,
                    "graph_model.speaker_embeddings": 1_800, "smax_fc": 6_307},
            notes=_UNUSED + _NOTES),
    ),
}


@MODELS.register("mmgcn", search_space={"lr": LogUniform(3e-4, 1e-2), "dropout": Uniform(0.0, 0.5), "layers": IntRange(2, 8)},
                 level="dialogue", modalities=["text", "audio", "video"],
                 paper="Hu et al. 2021, MMGCN: Multimodal Fusion via Deep Graph Convolution Network for Emotion "
                       "Recognition in Conversation", presets=PRESETS)
class MMGCN(BenchModel):
    """Multimodal utterance graph with angular-similarity edges and a deep GCNII."""

    level = "dialogue"
    pooling = "mean"

    def __init__(self, spec: DataSpec, hidden: PositiveInt = 32, graph_hidden: PositiveInt | None = None,
                 text_proj: PositiveInt | None = None, layers: PositiveInt = 4, alpha: UnitInterval = 0.1,
                 lamda: PositiveFloat = 0.5, dropout: DropoutRate = 0.3, lstm_layers: PositiveInt = 2,
                 use_speaker: bool = True, loss: Literal["task", "focal-reference"] = "task",
                 focal_gamma: float = 2.5, focal_alpha: float = 1.0) -> None:
        super().__init__(spec)
        graph_hidden = hidden if graph_hidden is None else graph_hidden
        text_proj = 2 * hidden if text_proj is None else text_proj
        if loss == "focal-reference" and spec.task != "classification":
            raise ValueError(f"mmgcn: loss='focal-reference' needs a classification task, got {spec.task!r}")
        self.alpha, self.lamda, self.loss_kind = alpha, lamda, loss
        self.focal_gamma, self.focal_alpha = focal_gamma, focal_alpha
        # the release's node order (audio, visual, text) fixes the layout of the classifier's input
        self.order = tuple(m for m in spec.dims if m != "text") + (("text",) if "text" in spec.dims else ())
        node = 2 * hidden
        self.proj = nn.ModuleDict({m: nn.Linear(d, text_proj if m == "text" else node) for m, d in spec.dims.items()})
        self.lstm_l = (nn.LSTM(text_proj, hidden, num_layers=lstm_layers, bidirectional=True, batch_first=True,
                               dropout=dropout if lstm_layers > 1 else 0.0) if "text" in spec.dims else None)
        self.speaker_embeddings = (nn.Embedding(spec.num_speakers, node)
                                   if use_speaker and "text" in spec.dims else None)
        self.gcn_in = nn.Linear(node, graph_hidden)
        self.gcn_layers = nn.ParameterList([nn.Parameter(torch.empty(2 * graph_hidden, graph_hidden))
                                            for _ in range(layers)])
        for w in self.gcn_layers:
            nn.init.uniform_(w, -1.0 / math.sqrt(graph_hidden), 1.0 / math.sqrt(graph_hidden))
        self.dropout = nn.Dropout(dropout)
        self.smax_fc = nn.Linear(len(self.order) * (node + graph_hidden), spec.output_dim)

    def encode(self, batch: DialogueBatch) -> torch.Tensor:
        """Node features ``[B, M*N, 2 hidden]``, modalities in ``self.order``, utterances within."""
        lengths = dialogue_lengths(batch.mask)
        feats = []
        for m in self.order:
            x = self.proj[m](batch.inputs[m])
            if m == "text":
                assert self.lstm_l is not None
                x = run_packed(self.lstm_l, x, lengths)
                if self.speaker_embeddings is not None:
                    x = x + self.speaker_embeddings(batch.speakers)
            feats.append(x)
        return torch.cat(feats, dim=1)

    def forward(self, batch: DialogueBatch) -> ModelOutput:
        mask = batch.mask
        if int(batch.speakers.max()) >= self.spec.num_speakers:
            raise ValueError(f"mmgcn: speaker id {int(batch.speakers.max())} >= spec.num_speakers={self.spec.num_speakers}")
        nodes = self.encode(batch)
        b, n = mask.shape
        k = len(self.order)
        real = mask.repeat(1, k)  # [B, M*N]
        mod_id = torch.arange(k, device=nodes.device).repeat_interleave(n)
        utt_id = torch.arange(n, device=nodes.device).repeat(k)
        structure = (mod_id[:, None] == mod_id[None, :]) | (utt_id[:, None] == utt_id[None, :])
        p = angular_adjacency(nodes, structure[None] & real[:, :, None] & real[:, None, :])

        x = self.dropout(nodes)
        h0 = torch.relu(self.gcn_in(x))
        h = h0
        for layer, w in enumerate(self.gcn_layers, start=1):
            theta = math.log(self.lamda / layer + 1)
            hi = torch.einsum("bij,bjd->bid", p, self.dropout(h))
            mixed = (1 - self.alpha) * hi + self.alpha * h0
            h = torch.relu(theta * (torch.cat([hi, h0], dim=-1) @ w) + (1 - theta) * mixed)
        out = torch.cat([x, self.dropout(h)], dim=-1)  # [B, M*N, 2 hidden + graph_hidden]
        feats = out.view(b, k, n, -1).permute(0, 2, 1, 3).reshape(b, n, -1)
        return ModelOutput(squeeze_regression(self.smax_fc(torch.relu(self.dropout(feats))), self.spec))

    def loss(self, output: ModelOutput, batch: Batch, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """The task loss, or the release's MELD focal loss (``loss="focal-reference"``, see the module doc)."""
        if self.loss_kind == "task":
            return super().loss(output, batch, class_weights)
        if class_weights is not None:
            raise ValueError("mmgcn: loss='focal-reference' takes no class weights (the release's FocalLoss has "
                             "none); train with class_weights='none'")
        assert isinstance(batch, DialogueBatch) and batch.labels is not None
        log_p = torch.log_softmax(output.prediction.float()[batch.mask], dim=-1)  # [n, C]
        onehot = F.one_hot(batch.labels[batch.mask], log_p.shape[-1]).to(log_p.dtype)
        focal = -self.focal_alpha * (1 - onehot * log_p) ** self.focal_gamma * log_p
        total = focal.mean()
        return total + output.aux_loss if output.aux_loss is not None else total
