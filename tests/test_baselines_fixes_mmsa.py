"""Behaviour of the structural differences between the earlier baselines and the reference code
(thuiar/MMSA @ a94e65d, yaohungt/Multimodal-Transformer @ a670936): one test per fix, each of
which the earlier implementations fail."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harness import DATASETS, MODELS
from harness.data.collate import collate_utterances
from harness.presets import presets_of


def _preset_model(name: str, preset: str, seed: int = 0, **overrides):
    p = presets_of(MODELS.get(name))[preset]
    torch.manual_seed(seed)
    return MODELS.create(name, p.spec(), preset=preset, **overrides)


def _batch(dims: dict, task: str = "regression", n: int = 4, seed: int = 0):
    ds = DATASETS.create("synthetic", dims=dict(dims), task=task, n_train=2, n_valid=1, n_test=1, keep_raw=False,
                         min_utts=3, max_utts=4, seed=seed)
    return ds, collate_utterances(ds.utterances("train")[:n], ds.spec)


# ------------------------------------------------------------------------------------------- MulT
def test_mult_presets_set_the_causal_mask():
    for preset in ("mosi", "mosei", "sims", "original"):
        assert presets_of(MODELS.get("mult"))[preset].options["causal_mask"] is True


def test_mult_crossmodal_output_at_step_t_ignores_later_steps():
    model = _preset_model("mult", "mosi").eval()
    stack = model.cross["audio_to_text"]
    torch.manual_seed(1)
    q, k = torch.randn(1, 8, 50), torch.randn(1, 11, 50)
    q_len, k_len = torch.tensor([8]), torch.tensor([11])
    t, offset = 4, 11 - 8  # query step t sees key steps <= t + |T_k - T_q|
    with torch.no_grad():
        base = stack(q, q_len, k, k_len)
        q2, k2 = q.clone(), k.clone()
        q2[:, t + 1:] += torch.randn_like(q2[:, t + 1:])
        k2[:, t + offset + 1:] += torch.randn_like(k2[:, t + offset + 1:])
        moved = stack(q2, q_len, k2, k_len)
        k3 = k.clone()
        k3[:, t + offset] += torch.randn_like(k3[:, t + offset])
        seen = stack(q, q_len, k3, k_len)
    torch.testing.assert_close(base[:, : t + 1], moved[:, : t + 1])
    assert not torch.allclose(base[:, t], seen[:, t])  # the last key it may see does matter
    memory = model.memory["text"]
    x = torch.randn(1, 6, 100)
    with torch.no_grad():
        a = memory(x, torch.tensor([6]))
        x[:, 3:] += torch.randn_like(x[:, 3:])  # random: a constant shift vanishes in LayerNorm
        b = memory(x, torch.tensor([6]))
    torch.testing.assert_close(a[:, :3], b[:, :3])


def test_mult_without_the_causal_mask_sees_the_future():
    model = _preset_model("mult", "mosi", causal_mask=False).eval()
    x = torch.randn(1, 6, 100)
    with torch.no_grad():
        a = model.memory["text"](x, torch.tensor([6]))
        x[:, 3:] += torch.randn_like(x[:, 3:])  # random: a constant shift vanishes in LayerNorm
        b = model.memory["text"](x, torch.tensor([6]))
    assert not torch.allclose(a[:, :3], b[:, :3])


@pytest.mark.parametrize("positions", [False, True])
def test_mult_every_stack_scales_by_the_root_of_its_width_and_adds_positions_from_one(positions):
    from baselines.mult import fairseq_positions

    model = _preset_model("mult", "original" if positions else "mosi", embed_dropout=0.0).eval()
    seen = {}
    for key, stack in (("cross", model.cross["video_to_audio"]), ("memory", model.memory["audio"])):
        stack.layers[0].register_forward_pre_hook(lambda mod, args, key=key: seen.__setitem__(key, args[0]))
    d = model.cross["video_to_audio"].width
    assert model.memory["audio"].width == 2 * d
    x, src = torch.randn(1, 7, d), torch.randn(1, 9, d)
    with torch.no_grad():
        model.cross["video_to_audio"](x, torch.tensor([7]), src, torch.tensor([9]))
        z = torch.randn(1, 7, 2 * d)
        model.memory["audio"](z, torch.tensor([7]))
    pe = (lambda n, w: fairseq_positions(n, w, x.device, x.dtype)) if positions else (lambda n, w: 0.0)
    torch.testing.assert_close(seen["cross"], math.sqrt(d) * x + pe(7, d))
    torch.testing.assert_close(seen["memory"], math.sqrt(2 * d) * z + pe(7, 2 * d))  # sqrt(2d) before the memory
    if positions:
        row = fairseq_positions(2, 6, torch.device("cpu"), torch.float32)
        freq = torch.exp(torch.arange(3) * -(math.log(10000.0) / 2))
        torch.testing.assert_close(row[0], torch.cat([torch.sin(freq), torch.cos(freq)]))  # position 1, [sin | cos]


def test_mult_every_stack_ends_with_its_own_layer_norm():
    model = _preset_model("mult", "mosi").eval()
    for stack in list(model.cross.values()) + list(model.memory.values()):
        assert isinstance(stack.layer_norm, nn.LayerNorm) and stack.layer_norm.normalized_shape == (stack.width,)
    with torch.no_grad():
        out = model.cross["text_to_video"](torch.randn(2, 5, 50), torch.tensor([5, 5]), torch.randn(2, 6, 50),
                                           torch.tensor([6, 6]))
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 5), atol=1e-3, rtol=0)


def test_mult_layer_normalises_queries_and_keys_with_one_layer_norm():
    layer = _preset_model("mult", "mosi").cross["audio_to_text"].layers[0]
    assert len(layer.layer_norms) == 2 and not hasattr(layer, "norm_kv")


def _first_cross_attention_inputs(model, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The key and value inputs of the first layer of the audio->text stack (before its LayerNorm)."""
    seen = {}
    layer = model.cross["audio_to_text"].layers[0]

    def keep(_module, args):  # returns None: the layer's arguments are left as they are
        seen.setdefault("kv", (args[1], args[2]))

    handle = layer.register_forward_pre_hook(keep)
    model.train(training)
    torch.manual_seed(3)
    try:
        with torch.no_grad():
            model.cross["audio_to_text"](torch.randn(2, 5, 50), torch.tensor([5, 5]), torch.randn(2, 6, 50),
                                         torch.tensor([6, 6]))
    finally:
        handle.remove()
    return seen["kv"]


def test_mult_keys_and_values_get_separate_embedding_dropout_masks():
    """The references embed the source twice, once for the key and once for the value, each with
    its own dropout mask; only the embedding dropout is on here, so any difference is the masks'."""
    off = dict(attn_dropout=0.0, audio_attn_dropout=0.0, video_attn_dropout=0.0, relu_dropout=0.0, res_dropout=0.0,
               text_dropout=0.0, out_dropout=0.0)
    model = _preset_model("mult", "mosi", embed_dropout=0.5, **off)
    key, value = _first_cross_attention_inputs(model, training=True)
    differ = (key != value).float().mean().item()
    assert 0.35 < differ < 0.65, f"keys and values differ in {differ:.2f} of elements; two masks at p=0.5 give 2p(1-p) = 0.5"
    key, value = _first_cross_attention_inputs(model, training=False)
    assert torch.equal(key, value)


def test_mult_has_the_references_dropouts_and_kernels():
    model = _preset_model("mult", "mosi")
    opts = presets_of(MODELS.get("mult"))["mosi"].options
    assert model.cross["audio_to_text"].layers[0].self_attn.dropout == opts["audio_attn_dropout"] == 0.2
    assert model.cross["video_to_text"].layers[0].self_attn.dropout == opts["video_attn_dropout"] == 0.0
    assert model.cross["text_to_audio"].layers[0].self_attn.dropout == opts["attn_dropout"] == 0.3
    assert model.memory["video"].layers[0].self_attn.dropout == 0.3
    assert model.memory["text"].embed_dropout == 0.2 and model.text_dropout == 0.5 and model.out_dropout == 0.5
    assert {m: c.kernel_size[0] for m, c in model.proj.items()} == {"text": 5, "audio": 5, "video": 5}
    mosei = _preset_model("mult", "mosei")
    assert {m: c.kernel_size[0] for m, c in mosei.proj.items()} == {"text": 5, "audio": 1, "video": 3}
    assert len(_preset_model("mult", "sims").memory["text"].layers) == 3  # max(nlevels=2, 3)


def test_mult_valid_convolution_shortens_the_sequence_and_stays_padding_safe():
    model = _preset_model("mult", "mosi").eval()
    ds, _ = _batch({"text": 768, "audio": 5, "video": 20})
    u = ds.utterances("train")[0]
    u = u.with_features({**u.features, "text": u.features["text"][:3]})  # shorter than the kernel (5)
    others = ds.utterances("train")[1:4]
    with torch.no_grad():
        alone = model(collate_utterances([u], ds.spec)).prediction
        both = model(collate_utterances([u, *others], ds.spec)).prediction[:1]
    torch.testing.assert_close(alone, both, atol=1e-5, rtol=1e-4)
    b = collate_utterances(others, ds.spec)
    h, lengths = model._project(b, "audio")
    torch.testing.assert_close(lengths, (b.lengths["audio"] - 4).clamp(min=1))
    assert h.shape[1] == b.inputs["audio"].shape[1] - 4


def test_mult_skips_the_projection_of_a_modality_already_d_wide():
    from harness.data.types import DataSpec

    model = MODELS.create("mult", DataSpec(dims={"text": 8, "audio": 4, "video": 16}, task="regression"), d=16,
                          heads=2, layers=1, memory_layers=1)
    assert set(model.proj) == {"text", "audio"}


# ------------------------------------------------------------------------------------------- MISA
def test_misa_encoders_are_stacked_bilstms_with_a_layer_norm_between():
    model = _preset_model("misa", "mosi")
    enc = model.encoders["video"]
    assert isinstance(enc.rnn1, nn.LSTM) and enc.rnn1.bidirectional and enc.rnn1.hidden_size == 20
    assert isinstance(enc.norm, nn.LayerNorm) and enc.norm.normalized_shape == (40,)
    assert isinstance(enc.rnn2, nn.LSTM) and enc.rnn2.input_size == 40 and enc.rnn2.bidirectional
    assert "text" not in model.encoders  # text: masked mean of the features, then project_t
    seen = {}
    enc.rnn2.register_forward_pre_hook(lambda mod, args: seen.__setitem__("x", args[0]))
    _, batch = _batch({"text": 768, "audio": 5, "video": 20})
    with torch.no_grad():
        enc(batch.inputs["video"], batch.lengths["video"])
    data = seen["x"].data  # the packed, normalised first-layer outputs
    torch.testing.assert_close(data.mean(-1), torch.zeros(data.shape[0]), atol=1e-5, rtol=0)


def test_misa_fusion_is_a_post_ln_transformer_encoder_layer_at_the_reference_widths():
    layer = _preset_model("misa", "mosi").transformer_encoder
    assert isinstance(layer, nn.TransformerEncoderLayer) and not layer.norm_first
    assert layer.linear1.out_features == 2048 and layer.self_attn.num_heads == 2 and layer.dropout.p == 0.1


def test_misa_difference_loss_does_not_backpropagate_through_the_norm():
    from baselines.misa import difference

    torch.manual_seed(0)
    x1, x2 = torch.randn(6, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    difference(x1, x2).backward()
    y1, y2 = x1.detach().clone().requires_grad_(), x2.detach().clone().requires_grad_()
    c1, c2 = y1 - y1.mean(0, keepdim=True), y2 - y2.mean(0, keepdim=True)
    n1 = c1 / (c1.norm(dim=1, keepdim=True).detach() + 1e-6)
    n2 = c2 / (c2.norm(dim=1, keepdim=True).detach() + 1e-6)
    (n1.t() @ n2).pow(2).mean().backward()
    torch.testing.assert_close(x1.grad, y1.grad)
    torch.testing.assert_close(x2.grad, y2.grad)


def test_misa_mosi_preset_has_mmsas_loss_weights_and_mse_task_loss():
    model = _preset_model("misa", "mosi")
    assert model.weights == (0.3, 0.1, 1.0)  # sim, diff, recon of MMSA's MOSI config
    _, batch = _batch({"text": 768, "audio": 5, "video": 20})
    pred = torch.zeros(batch.size)
    assert model.task_loss(pred, batch).item() == pytest.approx(batch.scores.pow(2).mean().item(), rel=1e-6)


def test_misa_text_lengths_option_reads_audio_and_video_up_to_the_text_length():
    ds, _ = _batch({"text": 768, "audio": 5, "video": 20}, n=1)
    u = ds.utterances("train")[0]
    t_len = u.length("text")
    audio = torch.cat([u.features["audio"], torch.randn(t_len + 3, 5)])  # longer than the text
    later = audio.clone()
    later[t_len:] += 3.0  # changes only frames past the text length
    a_u, b_u = (u.with_features({**u.features, "audio": x}) for x in (audio, later))
    for lengths, changes in (("text", False), ("own", True)):
        model = _preset_model("misa", "mosi", encoder_lengths=lengths).eval()
        with torch.no_grad():
            a = model(collate_utterances([a_u], ds.spec)).prediction
            b = model(collate_utterances([b_u], ds.spec)).prediction
        assert torch.allclose(a, b) != changes, lengths


# ------------------------------------------------------------------------------------- TFN, LMF
def test_tfn_regression_output_is_squashed_into_the_reference_range():
    model = _preset_model("tfn", "mosi").eval()
    _, batch = _batch({"text": 768, "audio": 5, "video": 20})
    with torch.no_grad():
        model.post_fusion_layer_3.bias.fill_(100.0)
        high = model(batch).prediction
        model.post_fusion_layer_3.bias.fill_(-100.0)
        low = model(batch).prediction
    torch.testing.assert_close(high, torch.full_like(high, 3.0))
    torch.testing.assert_close(low, torch.full_like(low, -3.0))
    assert not model.output_range.weight.requires_grad


def test_tfn_lmf_lf_dnn_sizes_are_per_modality_and_text_lstm_width_is_its_own():
    for name in ("tfn", "lmf", "lf-dnn"):
        model = _preset_model(name, "mosi")
        assert model.subnets["text"].rnn.hidden_size == 128
        assert model.subnets["audio"].linear_1.out_features != model.subnets["video"].linear_1.out_features
        assert isinstance(model.subnets["audio"].norm, nn.BatchNorm1d)
    assert _preset_model("tfn", "mosi").subnets["text"].linear_1.out_features == 32  # text_out, not the LSTM width
    assert _preset_model("lmf", "mosi").subnets["text"].linear_1.out_features == 64


def test_lmf_factors_map_straight_to_the_output():
    model = _preset_model("lmf", "mosi").eval()
    _, batch = _batch({"text": 768, "audio": 5, "video": 20})
    with torch.no_grad():
        prod = 1.0
        for m in ("audio", "video", "text"):
            z = model.subnets[m](batch.inputs[m], batch.lengths[m])
            z = torch.cat([torch.ones(z.shape[0], 1), z], dim=1)
            prod = prod * torch.einsum("bh,rho->rbo", z, model.factors[m].weight)
        expected = torch.einsum("r,rbo->bo", model.fusion_weights.weight[0], prod) + model.fusion_bias.weight
        torch.testing.assert_close(model(batch).prediction, expected.squeeze(-1))
    assert model.factors["text"].weight.shape == (3, 65, 1)


# ---------------------------------------------------------------------------------- EF-LSTM, MFN
def test_ef_lstm_normalises_each_time_step_and_stacks_four_lstm_layers():
    model = _preset_model("early-fusion", "mosi").train()
    assert model.lstm.num_layers == 4 and not model.lstm.bidirectional and model.lstm.hidden_size == 128
    assert isinstance(model.norm, nn.BatchNorm1d) and model.norm.num_features == 50
    seen = {}
    model.norm.register_forward_hook(lambda mod, args, out: seen.__setitem__("y", out))
    _, batch = _batch({"text": 768, "audio": 5, "video": 20})
    model(batch)
    y = seen["y"]  # [B, 50, D]: statistics per step over the batch and the features
    torch.testing.assert_close(y.mean(dim=(0, 2)), torch.zeros(50), atol=1e-4, rtol=0)


def test_mfn_has_per_network_widths_and_no_input_norm():
    model = _preset_model("mfn", "mosi")
    assert [model.cells[m].hidden_size for m in ("text", "audio", "video")] == [256, 32, 256]
    assert (model.att1[0].out_features, model.att2[0].out_features, model.gamma1[0].out_features,
            model.gamma2[0].out_features, model.out[0].out_features) == (32, 64, 256, 32, 128)
    assert (model.att1[2].p, model.gamma1[2].p, model.gamma2[2].p) == (0.2, 0.7, 0.5)
    assert not any(isinstance(m, nn.LayerNorm) for m in model.modules())


def test_mfn_presets_average_audio_and_video_over_time_like_mmsas_config():
    ds, _ = _batch({"text": 768, "audio": 5, "video": 20}, n=1)
    u = ds.utterances("train")[0]
    flipped = u.with_features({**u.features, "audio": u.features["audio"].flip(0)})  # same mean, other order
    for averaged, changes in ((("audio", "video"), False), ((), True)):
        model = _preset_model("mfn", "mosi", averaged_modalities=averaged).eval()
        with torch.no_grad():
            a = model(collate_utterances([u], ds.spec)).prediction
            b = model(collate_utterances([flipped], ds.spec)).prediction
        assert torch.allclose(a, b, atol=1e-6) != changes, averaged
