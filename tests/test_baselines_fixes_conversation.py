"""Behaviour of the conversation baselines that the released code has and earlier versions of
these models did not (each test fails on those versions), and a few training steps of every
conversation preset on synthetic data with the preset's input widths."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F

from harness import DATASETS, MODELS
from harness.data.collate import DialogueBatch, collate_dialogues
from harness.data.types import DataSpec
from harness.layers import run_packed
from harness.presets import presets_of
from harness.train import TrainConfig, make_optimizer

DIMS = {"text": 12, "audio": 10, "video": 6}


def _batch(lengths: tuple[int, ...], dims: dict[str, int] = DIMS, speakers: int = 2, seed: int = 0) -> DialogueBatch:
    g = torch.Generator().manual_seed(seed)
    b, n = len(lengths), max(lengths)
    mask = torch.zeros(b, n, dtype=torch.bool)
    for i, length in enumerate(lengths):
        mask[i, :length] = True
    inputs = {m: torch.randn(b, n, d, generator=g) * mask[..., None] for m, d in dims.items()}
    spk = torch.randint(0, speakers, (b, n), generator=g) * mask
    labels = torch.randint(0, 4, (b, n), generator=g).masked_fill(~mask, -100)
    return DialogueBatch(inputs=inputs, mask=mask, speakers=spk, labels=labels, scores=None,
                         uids=[[f"{i}_{t}" for t in range(n)] for i in range(b)])


def _spec(dims: dict[str, int] = DIMS, speakers: int = 2) -> DataSpec:
    return DataSpec(dims=dims, num_classes=4, num_speakers=speakers)


def _create(name: str, spec: DataSpec | None = None, seed: int = 0, **options):
    torch.manual_seed(seed)
    return MODELS.create(name, spec or _spec(), **options)


def _capture_input(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    store: dict[str, torch.Tensor] = {}
    module.register_forward_hook(lambda _m, args, _out: store.__setitem__("x", args[0].detach()))
    return store


# ---- SDT ------------------------------------------------------------------------------------

def test_sdt_fusion_is_a_softmax_over_modalities_per_feature_from_one_shared_linear():
    model = _create("sdt", d=8, heads=2).eval()
    reps = {m: _capture_input(model.students[m]) for m in DIMS}  # each modality's fused representation
    batch = _batch((5, 3))
    with torch.no_grad():
        out = model(batch)
    weights = out.extras["modality_weights"]
    assert weights.shape == (2, 5, 3, 8)  # [B, N, modalities, features]
    torch.testing.assert_close(weights.sum(2), torch.ones(2, 5, 8))
    assert weights.std(dim=-1).mean() > 1e-3  # the weights differ from feature to feature
    stacked = torch.stack([reps[m]["x"] for m in DIMS], dim=2)
    assert model.last_gate.bias is None and tuple(model.last_gate.weight.shape) == (8, 8)
    torch.testing.assert_close(weights, torch.softmax(stacked @ model.last_gate.weight.T, dim=2))


def test_sdt_feed_forward_is_d_wide_and_gates_have_no_bias():
    model = _create("sdt", d=8, heads=2, layers=2)
    for layers in model.encoders.values():
        assert layers[0].w_1.out_features == 8 and layers[0].w_2.in_features == 8
        assert layers[0].layer_norm is None and isinstance(layers[1].layer_norm, torch.nn.LayerNorm)
    assert all(g.bias is None for g in model.gates.values())
    for head in model.students.values():
        assert [type(x) for x in head] == [torch.nn.ReLU, torch.nn.Dropout, torch.nn.Linear]
    assert isinstance(model.teacher, torch.nn.Linear)


def test_sdt_distillation_is_the_released_kl_teacher_not_detached_no_t_squared():
    model = _create("sdt", d=8, heads=2, temperature=4.0, gamma_ce=0.0).eval()
    batch = _batch((5, 3))
    out = model(batch)
    kl = model.loss(out, batch) - model.task_loss(out.prediction, batch)
    mask = batch.mask
    p = torch.softmax(out.prediction[mask] / 4.0, -1)
    expected = sum((p * (p.log() - torch.log_softmax(s[mask] / 4.0, -1))).sum() / mask.sum()
                   for s in out.extras["students"].values())
    torch.testing.assert_close(kl, expected)
    kl.backward()
    assert model.teacher.weight.grad is not None and model.teacher.weight.grad.abs().sum() > 0


def test_sdt_meld_preset_gates_are_identity_and_frozen():
    p = presets_of(MODELS.get("sdt"))["meld"]
    model = MODELS.create("sdt", p.spec(), preset="meld", d=16, heads=2, ff=16)
    for gate in model.gates.values():
        assert not gate.weight.requires_grad
        torch.testing.assert_close(gate.weight, torch.eye(16))


# ---- DialogueRNN ----------------------------------------------------------------------------

def test_dialoguernn_prediction_depends_on_later_utterances():
    batch = _batch((6,))
    later = _batch((6,))
    later.inputs = {m: x.clone() for m, x in batch.inputs.items()}
    later.inputs["text"][0, 4:] += 3.0
    model = _create("dialoguernn", hidden=8).eval()
    with torch.no_grad():
        first, changed = model(batch).prediction[0, 0], model(later).prediction[0, 0]
    assert not torch.allclose(first, changed, atol=1e-4)  # backward cell and matching attention see the future
    causal = _create("dialoguernn", hidden=8, bidirectional=False, matching_attention=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(causal(batch).prediction[0, :4], causal(later).prediction[0, :4])


def test_dialoguernn_state_sizes_are_separate_and_the_input_is_not_projected():
    model = _create("dialoguernn", hidden=5, global_size=7, party_size=9, emotion_size=11)
    cell = model.dialog_rnn_f
    d_m = sum(DIMS.values())
    assert (cell.g_cell.input_size, cell.g_cell.hidden_size) == (d_m + 9, 7)
    assert (cell.p_cell.input_size, cell.p_cell.hidden_size) == (d_m + 7, 9)
    assert (cell.e_cell.input_size, cell.e_cell.hidden_size) == (9, 11)
    assert model.linear.in_features == 22 and model.smax_fc.in_features == 10
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in model.modules())


def test_dialoguernn_dropout_acts_inside_the_recurrence():
    batch = _batch((6, 4))
    quiet = _create("dialoguernn", hidden=8, dropout=0.0, rec_dropout=0.0, emotion_dropout=0.0).train()
    torch.testing.assert_close(quiet(batch).prediction, quiet(batch).prediction)
    noisy = _create("dialoguernn", hidden=8, dropout=0.0, rec_dropout=0.5, emotion_dropout=0.0).train()
    assert not torch.allclose(noisy(batch).prediction, noisy(batch).prediction)


# ---- MMGCN ----------------------------------------------------------------------------------

def test_mmgcn_speaker_embedding_reaches_text_nodes_only():
    model = _create("mmgcn", hidden=4, layers=2).eval()
    batch = _batch((5,))
    swapped = _batch((5,))
    swapped.speakers = 1 - batch.speakers
    with torch.no_grad():
        a, b = model.encode(batch), model.encode(swapped)
    n = 5
    order = model.order
    assert order == ("audio", "video", "text")
    torch.testing.assert_close(a[:, : 2 * n], b[:, : 2 * n])  # audio and video nodes
    assert not torch.allclose(a[:, 2 * n:], b[:, 2 * n:])  # text nodes


def test_mmgcn_graph_is_the_gcnii_variant_with_an_input_layer_and_one_output_layer():
    hidden, gh, alpha, lamda = 3, 5, 0.1, 0.5
    model = _create("mmgcn", hidden=hidden, graph_hidden=gh, layers=2, dropout=0.0).eval()
    assert all(tuple(w.shape) == (2 * gh, gh) for w in model.gcn_layers)
    seen = _capture_input(model.smax_fc)
    batch = _batch((4,))
    with torch.no_grad():
        model(batch)
        x = model.encode(batch)[0]  # [3*4 nodes, 2 hidden]
        k, n = 3, 4
        same = torch.arange(k).repeat_interleave(n)
        utt = torch.arange(n).repeat(k)
        linked = (same[:, None] == same[None, :]) | (utt[:, None] == utt[None, :])
        unit = x / x.norm(dim=-1, keepdim=True)
        adj = (1 - torch.arccos(unit @ unit.T * 0.99999) / math.pi) * linked
        d = adj.sum(1).rsqrt()
        p = d[:, None] * adj * d[None, :]
        h0 = torch.relu(model.gcn_in(x))
        h = h0
        for layer, w in enumerate(model.gcn_layers, start=1):
            theta = math.log(lamda / layer + 1)
            hi = p @ h
            h = torch.relu(theta * torch.cat([hi, h0], -1) @ w + (1 - theta) * ((1 - alpha) * hi + alpha * h0))
        nodes = torch.cat([x, h], -1).view(k, n, -1)
        expected = torch.relu(torch.cat([nodes[0], nodes[1], nodes[2]], -1))  # [N, 3 (2 hidden + gh)]
    torch.testing.assert_close(seen["x"][0], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("preset", ["iemocap", "meld"])
def test_mmgcn_presets_build_64_layers(preset):
    p = presets_of(MODELS.get("mmgcn"))[preset]
    assert len(MODELS.create("mmgcn", p.spec(), preset=preset).gcn_layers) == 64


def test_mmgcn_focal_loss_is_the_released_formula():
    model = _create("mmgcn", hidden=4, layers=2, loss="focal-reference").eval()
    batch = _batch((5, 3))
    out = model(batch)
    log_p = torch.log_softmax(out.prediction[batch.mask], -1)
    onehot = F.one_hot(batch.labels[batch.mask], 4).float()
    expected = (-(1 - onehot * log_p) ** 2.5 * log_p).mean()
    torch.testing.assert_close(model.loss(out, batch), expected)
    with pytest.raises(ValueError, match="class weights"):
        model.loss(out, batch, torch.ones(4))


def test_mmgcn_gradients_stay_finite_under_bf16_autocast():
    """The accelerator path trains under autocast; the adjacency's arccos must not see cos = 1."""
    model = _create("mmgcn", hidden=4, layers=2).train()
    batch = _batch((5, 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(model(batch), batch)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ---- DialogueGCN ----------------------------------------------------------------------------

def test_dialoguegcn_graph_layers_are_the_released_code():
    """conv1 sums relation-typed messages weighted by position-queried edge attention plus an
    unweighted root; conv2 sums neighbours plus a linear self term; no activation after either."""
    spk_count, wp, wf = 3, 1, 2
    model = _create("dialoguegcn", _spec(speakers=spk_count), hidden=3, graph_hidden=4, window_past=wp,
                    window_future=wf, max_len=8, num_bases=5, dropout=0.0).eval()
    seen = _capture_input(model.linear)
    batch = _batch((6,), speakers=spk_count, seed=3)
    n, spk = 6, batch.speakers[0]
    with torch.no_grad():
        model(batch)
        x = torch.cat([batch.inputs[m] for m in DIMS], -1)
        g = run_packed(model.lstm, x, torch.tensor([n]))[0]
        query = model.edge_att.weight  # [max_len, 2 hidden]: one query vector per position
        weights = torch.einsum("rb,bio->rio", model.conv1.comp, model.conv1.basis)
        h1 = g @ model.conv1.root + model.conv1.bias
        for i in range(n):
            window = [j for j in range(n) if -wp <= j - i <= wf]
            w = torch.softmax(torch.stack([query[i] @ g[j] for j in window]), 0)
            for wij, j in zip(w, window, strict=True):
                rel = 2 * (spk_count * int(spk[i]) + int(spk[j])) + (0 if i < j else 1)
                h1[j] += wij * (g[i] @ weights[rel])
        h2 = model.conv2.lin(h1)
        for i in range(n):
            for j in range(n):
                if -wp <= j - i <= wf:
                    h2[j] += h1[i] @ model.conv2.weight
    torch.testing.assert_close(seen["x"][0], torch.cat([g, h2], -1), atol=1e-5, rtol=1e-5)
    assert (seen["x"][0, :, g.shape[1]:] < 0).any()  # no ReLU after the graph layers
    assert isinstance(model.lstm, torch.nn.LSTM) and model.lstm.num_layers == 2 and model.lstm.bidirectional


def test_dialoguegcn_position_attention_refuses_dialogues_longer_than_max_len():
    model = _create("dialoguegcn", hidden=3, max_len=4)
    with pytest.raises(ValueError, match="max_len=4"):
        model(_batch((5,)))


def test_dialoguegcn_paper_bilinear_edge_attention_is_an_option():
    model = _create("dialoguegcn", hidden=3, edge_attention="bilinear").eval()
    assert tuple(model.edge_att.weight.shape) == (6, 6)
    short = _batch((3,))
    both = _batch((3, 7), seed=0)
    both.inputs = {m: x.clone() for m, x in both.inputs.items()}
    for m in DIMS:
        both.inputs[m][0, :3] = short.inputs[m][0]
    both.speakers[0, :3] = short.speakers[0]
    with torch.no_grad():
        torch.testing.assert_close(model(short).prediction[0], model(both).prediction[0, :3], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="edge_attention"):
        _create("dialoguegcn", edge_attention="dot")


# ---- bc-LSTM --------------------------------------------------------------------------------

def test_bc_lstm_is_one_contextual_lstm_over_the_chosen_modalities():
    model = _create("bc-lstm", hidden=4, modalities=("text",)).eval()
    assert model.lstm.input_size == DIMS["text"] and model.lstm.num_layers == 2
    batch = _batch((5,))
    other = _batch((5,))
    other.inputs = {**batch.inputs, "audio": batch.inputs["audio"] + 5.0}
    with torch.no_grad():
        torch.testing.assert_close(model(batch).prediction, model(other).prediction)
    with pytest.raises(ValueError, match="modalities"):
        _create("bc-lstm", modalities=("txt",))


# ---- every conversation preset trains ----------------------------------------------------------

CONVERSATION_PRESETS = [(name, p) for name in ("bc-lstm", "dialoguernn", "dialoguegcn", "mmgcn", "sdt")
                        for p in presets_of(MODELS.get(name))]


@functools.cache
def _synthetic(dims: tuple[tuple[str, int], ...]):
    return DATASETS.create("synthetic", dims=dict(dims), n_train=2, n_valid=1, n_test=1, min_utts=3, max_utts=5,
                           keep_raw=False)


@pytest.mark.parametrize(("name", "preset"), CONVERSATION_PRESETS)
def test_preset_trains_on_synthetic_data_with_its_dims(name, preset):
    p = presets_of(MODELS.get(name))[preset]
    ds = _synthetic(tuple(sorted(p.dims.items())))
    spec = p.spec()  # the preset's modalities and widths (synthetic data always carries all three)
    torch.manual_seed(0)
    model = MODELS.create(name, spec, preset=preset)
    batch = collate_dialogues(ds.splits["train"], spec, model.pooling)
    recipe = {**p.recipe, "class_weights": "none"}  # the recipe's optimiser and rate (synthetic data: 4 classes)
    optimizer = make_optimizer(model.parameters(), TrainConfig(**recipe))
    steps = 2 if name == "sdt" else 4

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(model.loss(model(batch), batch))

    before = eval_loss()
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model.loss(model(batch), batch).backward()
        optimizer.step()
    after = eval_loss()
    assert math.isfinite(before) and after < before, f"{name}[{preset}]: loss {before:.4f} -> {after:.4f}"
