"""Unit tests of the MCER blocks: encodings, denoiser, gates, graphs, fusion, heads/loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from harness.layers import masked_softmax
from mcer.denoise import DenoiseAttention, DenoisingEncoder, LearnableDelta, shifted_key_mask
from mcer.encodings import InputProjection, PositionalEncoding, SpeakerEmbedding
from mcer.fusion import CrossModalDiffusion
from mcer.gates import FilterGate
from mcer.graph import GraphAttentionLayer, SpeakerGraphs, build_relations, select_graph
from mcer.heads import ModalityHeads, mcer_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def _mask(lengths, n):
    return torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]


# -- encodings -------------------------------------------------------------------------------
def test_projection_and_speaker_embedding_shapes_and_padding():
    proj = InputProjection({"text": 5, "audio": 7}, 8)
    out = proj({"text": torch.randn(2, 3, 5), "audio": torch.randn(2, 3, 7)})
    assert out["text"].shape == (2, 3, 8) and out["audio"].shape == (2, 3, 8)
    emb = SpeakerEmbedding(2, 8)
    mask = _mask([3, 1], 3)
    e = emb(torch.tensor([[0, 1, 0], [1, 0, 0]]), mask)
    assert torch.all(e[1, 1:] == 0)  # padding gets the zero padding vector
    assert not torch.allclose(e[0, 0], e[0, 1])
    with pytest.raises(ValueError, match="speaker ids"):
        emb(torch.tensor([[0, 2, 0]]), _mask([3], 3))


def test_rotary_encoding_is_a_rotation_by_position():
    pe = PositionalEncoding(6, "rotary")
    x = torch.randn(1, 4, 6)
    y = pe(x)
    assert torch.allclose(y[:, 0], x[:, 0])  # position 0: angle 0
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5)  # rotations keep the norm
    # pair 0 of position p is rotated by angle p
    p = 3
    c, s = math.cos(p), math.sin(p)
    assert torch.allclose(y[0, p, 0], c * x[0, p, 0] - s * x[0, p, 1], atol=1e-5)
    sin = PositionalEncoding(6, "sinusoidal")
    assert torch.allclose(sin(torch.zeros(1, 2, 6))[0, 1, 0], torch.tensor(math.sin(1.0)))
    with pytest.raises(ValueError, match="positional"):
        PositionalEncoding(6, "learned")


# -- denoiser --------------------------------------------------------------------------------
def test_masked_softmax_zero_rows_and_exact_zero_masked():
    s = torch.randn(2, 3)
    m = torch.tensor([[True, False, True], [False, False, False]])
    p = masked_softmax(s, m)
    assert torch.all(p[1] == 0) and p[0, 1] == 0
    assert torch.allclose(p[0].sum(), torch.tensor(1.0))
    # every row with a valid key (the path that skips the zeroing pass): masked entries still exactly 0
    s2 = torch.randn(4, 2, 5, 5) * 30
    keys = torch.tensor([[1, 1, 0, 1, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 0, 0]], dtype=torch.bool)
    p2 = masked_softmax(s2, keys[:, None, None, :])
    assert torch.all(p2.masked_select(~keys[:, None, None, :].expand_as(p2)) == 0)
    torch.testing.assert_close(p2.sum(-1), torch.ones(4, 2, 5))


def test_delta_convolution_is_masked():
    torch.manual_seed(0)
    d = LearnableDelta(4).eval()
    x = torch.randn(1, 5, 4)
    mask = _mask([3], 5)
    x2 = x.clone()
    x2[:, 3:] = 100.0  # garbage in the padding rows
    assert torch.allclose(d(x, mask)[:, :3], d(x2, mask)[:, :3])
    leaky = LearnableDelta(4, masked=False).eval()
    leaky.load_state_dict(d.state_dict())
    assert not torch.allclose(leaky(x, mask)[:, 2], leaky(x2, mask)[:, 2])  # the reference leak


def test_diff_shift_one_product_equals_explicit_shifted_keys():
    torch.manual_seed(0)
    att = DenoiseAttention(8, 2, "diff-shift", dropout=0.0, scale="model", cyclic=True).eval()
    x = torch.randn(2, 5, 8)
    mask = torch.ones(2, 5, dtype=torch.bool)
    q, k, v = att.qkv(x).chunk(3, -1)
    q, k, v = (t.view(2, 5, 2, 4).transpose(1, 2) for t in (q, k, v))
    a1 = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), -1)
    a2 = torch.softmax(q @ torch.roll(k, 1, dims=2).transpose(-2, -1) / math.sqrt(8), -1)
    expect = att.out((0.5 * (a1 - a2) @ v).transpose(1, 2).reshape(2, 5, 8))
    assert torch.allclose(att(x, mask), expect, atol=1e-5)


def test_noncyclic_shift_mask():
    mask = _mask([3, 1], 4)
    assert shifted_key_mask(mask, cyclic=False).tolist() == [[False, True, True, False], [False] * 4]
    assert torch.equal(shifted_key_mask(mask, cyclic=True), mask)


@pytest.mark.parametrize("variant", ["diff-shift", "diff-dual", "standard"])
def test_denoising_encoder_ignores_padding(variant):
    torch.manual_seed(0)
    enc = DenoisingEncoder(8, 2, variant, dropout=0.0).eval()
    x = torch.randn(1, 4, 8)
    alone = enc(x, x + 1, torch.ones(1, 4, dtype=torch.bool))
    xp = torch.cat([x, torch.randn(1, 3, 8) * 50], dim=1)
    padded = enc(xp, xp + 1, _mask([4], 7))
    assert torch.allclose(alone, padded[:, :4], atol=1e-5)
    assert torch.isfinite(padded).all()


def test_diff_dual_lambda_init():
    att = DenoiseAttention(8, 2, "diff-dual", layer_index=1)
    assert att.lambda_init == pytest.approx(0.8 - 0.6 * math.exp(-0.3))
    with pytest.raises(ValueError, match="variant"):
        DenoiseAttention(8, 2, "diff-xyz")


def test_filter_gate():
    g = FilterGate(4)
    x = torch.randn(2, 3, 4)
    y = g(x)
    assert y.shape == x.shape and torch.all(y.abs() <= x.abs() + 1e-7)


# -- graphs ------------------------------------------------------------------------------------
def test_build_relations_matches_a_loop():
    spk = torch.tensor([[0, 1, 0, 0, 1], [1, 1, 0, 0, 0]])
    mask = _mask([5, 3], 5)
    rel = build_relations(spk, mask, window=2)
    for b in range(2):
        for i in range(5):
            for j in range(5):
                if not (mask[b, i] and mask[b, j]) or abs(i - j) > 2:
                    want = 0
                elif i == j:
                    want = 1
                elif spk[b, i] == spk[b, j]:
                    want = 2 if j < i else 3
                else:
                    want = 4 if j > i else 5
                assert rel[b, i, j] == want, (b, i, j)
    intra = select_graph(rel, "intra")
    assert set(intra.unique().tolist()) <= {0, 1, 2, 3}
    assert set(select_graph(rel, "inter").unique().tolist()) <= {0, 1, 4, 5}


def _naive_scores(layer: GraphAttentionLayer, wh, rel):
    """The reference form: materialise [W h_i ; W h_j ; E rel_ij] and multiply by a."""
    b, n, f = wh.shape
    parts = [wh.unsqueeze(2).expand(b, n, n, f), wh.unsqueeze(1).expand(b, n, n, f)]
    if layer.relation_embedding is not None:
        parts.append(layer.relation_embedding(rel))
    return layer.leakyrelu((torch.cat(parts, -1) @ layer.a).squeeze(-1))


@pytest.mark.parametrize("aware", [True, False])
def test_decomposed_gat_equals_naive_concatenation(aware):
    torch.manual_seed(0)
    emb = torch.nn.Embedding(6, 10) if aware else None
    layer = GraphAttentionLayer(6, 5, dropout=0.0, relation_embedding=emb)
    h = torch.randn(3, 7, 6)
    rel = torch.randint(0, 6, (3, 7, 7))
    wh = h @ layer.W
    assert torch.allclose(layer.scores(wh, rel), _naive_scores(layer, wh, rel), atol=1e-5)


def test_graphs_ignore_padding_and_options():
    torch.manual_seed(0)
    for kind in ["both", "intra", "inter", "unaware"]:
        g = SpeakerGraphs(8, kind, window=2).eval()
        x, spk = torch.randn(1, 4, 8), torch.tensor([[0, 1, 1, 0]])
        alone = g(x, spk, torch.ones(1, 4, dtype=torch.bool))
        padded = g(torch.cat([x, torch.randn(1, 2, 8)], 1), torch.cat([spk, torch.zeros(1, 2, dtype=torch.long)], 1),
                   _mask([4], 6))
        assert torch.allclose(alone, padded[:, :4], atol=1e-5), kind
    assert SpeakerGraphs(8, "none")(x, spk, torch.ones(1, 4, dtype=torch.bool)) is x
    assert SpeakerGraphs(8, "unaware").relation_embedding is None
    with pytest.raises(ValueError, match="graphs"):
        SpeakerGraphs(8, "full")


# -- fusion ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["text-guided", "symmetric", "concat"])
def test_fusion_key_mask(mode):
    torch.manual_seed(0)
    fu = CrossModalDiffusion(8, 2, mode).eval()
    t, a, v = (torch.randn(1, 3, 8) for _ in range(3))
    alone = fu(t, a, v, torch.ones(1, 3, dtype=torch.bool))
    pad = lambda x: torch.cat([x, torch.randn(1, 2, 8) * 10], 1)  # noqa: E731
    padded = fu(pad(t), pad(a), pad(v), _mask([3], 5))
    for x, y in zip(alone, padded):
        assert torch.allclose(x, y[:, :3], atol=1e-5)


def test_reference_fusion_leaks_padding():
    torch.manual_seed(0)
    fu = CrossModalDiffusion(8, 2, "symmetric", key_mask=False).eval()
    t, a, v = (torch.randn(1, 3, 8) for _ in range(3))
    alone = fu(t, a, v, torch.ones(1, 3, dtype=torch.bool))
    pad = lambda x: torch.cat([x, torch.randn(1, 2, 8) * 10], 1)  # noqa: E731
    padded = fu(pad(t), pad(a), pad(v), _mask([3], 5))
    assert not torch.allclose(alone[0], padded[0][:, :3], atol=1e-4)


def test_text_guided_differs_from_symmetric_only_for_audio_video():
    torch.manual_seed(0)
    sym = CrossModalDiffusion(8, 2, "symmetric").eval()
    tg = CrossModalDiffusion(8, 2, "text-guided").eval()
    tg.load_state_dict(sym.state_dict())
    t, a, v = (torch.randn(1, 3, 8) for _ in range(3))
    m = torch.ones(1, 3, dtype=torch.bool)
    out_s, out_g = sym(t, a, v, m), tg(t, a, v, m)
    assert torch.allclose(out_s[0], out_g[0]) and not torch.allclose(out_s[1], out_g[1])


# -- heads and loss ----------------------------------------------------------------------------
def test_heads_fuse_with_weights_and_loss_terms():
    heads = ModalityHeads(4, 3, (1.0, 2.0, 0.5), dropout=0.0)
    feats = {m: torch.randn(2, 5, 4) for m in ("text", "audio", "video")}
    logits, fused = heads(feats)
    assert fused.shape == (2, 5, 3)
    assert torch.allclose(fused, logits["text"] + 2 * logits["audio"] + 0.5 * logits["video"], atol=1e-6)
    labels = torch.randint(0, 3, (10,))
    task = lambda p: F.cross_entropy(p.reshape(-1, 3), labels)  # noqa: E731
    with_aux = mcer_loss(task, fused, logits, 0.1)
    expect = task(fused) + 0.1 * sum(task(x) ** 2 for x in logits.values())
    assert torch.allclose(with_aux, expect)
    assert torch.allclose(mcer_loss(task, fused, None), task(fused))
    with pytest.raises(ValueError, match="logit_weights"):
        ModalityHeads(4, 3, (1.0, 2.0))
