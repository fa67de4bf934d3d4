"""Parameter parity of the conversation baselines with their released code, beyond the presets.

Every expected number here was measured by running the released model classes
(declare-lab/conv-emotion @6128ca2, hujingwen6666/MMGCN @85732d9, butterfliesss/SDT @60af921) at
the same configuration, counting the parameters that receive a gradient in a forward and
backward pass (the ones the release uses). tests/test_presets.py checks the presets' totals and
blocks; this file checks the presets' bookkeeping and configurations the presets do not cover,
so that a preset cannot match its count by adjusting sizes while the architecture is wrong.
"""

from __future__ import annotations

import pytest
import torch

from harness import MODELS
from harness.data.types import DataSpec
from harness.presets import block_params, presets_of

CONVERSATION = ("bc-lstm", "dialoguernn", "dialoguegcn", "mmgcn", "sdt")
IEMOCAP_RAW = {"text": 100, "audio": 100, "video": 512}  # conv-emotion's IEMOCAP_features_raw.pkl
IEMOCAP_MM = {"text": 100, "audio": 1582, "video": 342}  # MMGCN's IEMOCAP_features.pkl
IEMOCAP_SDT = {"text": 1024, "audio": 1582, "video": 342}


def _spec(dims: dict[str, int], speakers: int = 2, classes: int = 6) -> DataSpec:
    return DataSpec(dims=dims, num_classes=classes, num_speakers=speakers)


def _sum(model: torch.nn.Module, *prefixes: str) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefixes))


def test_every_conversation_model_has_an_iemocap_preset_with_provenance():
    for name in CONVERSATION:
        presets = presets_of(MODELS.get(name))
        assert "iemocap" in presets, name
        for preset in presets.values():
            ref = preset.reference
            assert ref.repo and ref.commit and ref.path and ref.config, name
            assert ref.params is not None and ref.blocks, name
            assert sum(ref.blocks.values()) == ref.params, f"{name}: blocks do not add up to the used count"
            if ref.created_params is not None:
                assert ref.created_params > ref.params and ref.notes, name
    assert set(presets_of(MODELS.get("dialoguegcn"))) == {"iemocap"}  # the release ships no MELD script
    for name in ("bc-lstm", "dialoguernn", "mmgcn", "sdt"):
        assert set(presets_of(MODELS.get(name))) == {"iemocap", "meld"}, name


# (model, preset) -> (params used, params created) as measured on the release
RELEASED_COUNTS = {
    ("bc-lstm", "iemocap"): (423_906, None), ("bc-lstm", "meld"): (824_007, None),
    ("dialoguernn", "iemocap"): (8_880_406, None), ("dialoguernn", "meld"): (2_666_607, None),
    ("dialoguegcn", "iemocap"): (1_096_346, 1_348_046),
    ("mmgcn", "iemocap"): (2_194_506, 2_702_015), ("mmgcn", "meld"): (2_040_407, 2_552_217),
    ("sdt", "iemocap"): (79_669_272, 79_687_704), ("sdt", "meld"): (78_367_772, 78_386_204),
}


@pytest.mark.parametrize(("name", "preset"), sorted(RELEASED_COUNTS))
def test_preset_counts_equal_the_measured_release(name, preset):
    p = presets_of(MODELS.get(name))[preset]
    used, created = RELEASED_COUNTS[(name, preset)]
    assert (p.reference.params, p.reference.created_params) == (used, created)
    model = MODELS.create(name, p.spec(), preset=preset)
    assert model.num_parameters() == used
    assert block_params(model, p) == dict(p.reference.blocks)


def test_sdt_meld_gates_are_frozen_like_the_release():
    p = presets_of(MODELS.get("sdt"))["meld"]
    model = MODELS.create("sdt", p.spec(), preset="meld")
    # the release trains 68,949,020 (its 9 unused LayerNorms, 18,432, are trainable there)
    assert model.num_parameters(trainable_only=True) == 68_949_020 - 18_432


# ---- other configurations of the same references ---------------------------------------------

def test_bc_lstm_other_widths_and_attention():
    model = MODELS.create("bc-lstm", _spec(IEMOCAP_RAW), hidden=50, dense=80, modalities=("text",))
    assert model.num_parameters() == 130_166
    assert (_sum(model, "lstm."), _sum(model, "linear."), _sum(model, "smax_fc.")) == (121_600, 8_080, 486)
    p = presets_of(MODELS.get("bc-lstm"))["iemocap"]
    model = MODELS.create("bc-lstm", p.spec(), preset="iemocap", attention=True)
    assert model.num_parameters() == 464_106 and _sum(model, "matchatt.") == 40_200


@pytest.mark.parametrize(("options", "total", "attention", "listener"), [
    ({"context_attention": "general"}, 182_198, 6_400, 0),
    ({"context_attention": "concat", "listener_state": True}, 259_422, 16_500, 28_512),
    ({"context_attention": "simple"}, 169_526, 64, 0),
])
def test_dialoguernn_separate_state_sizes(options, total, attention, listener):
    """D_m 100, D_g 64, D_p 48, D_e 32, D_h 40: every state size its own option."""
    model = MODELS.create("dialoguernn", _spec(IEMOCAP_RAW), hidden=40, global_size=64, party_size=48,
                          emotion_size=32, modalities=("text",), **options)
    assert model.num_parameters() == total
    for d in ("f", "r"):
        assert _sum(model, f"dialog_rnn_{d}.g_cell.") == 41_088
        assert _sum(model, f"dialog_rnn_{d}.p_cell.") == 30_816
        assert _sum(model, f"dialog_rnn_{d}.e_cell.") == 7_872
        assert _sum(model, f"dialog_rnn_{d}.attention.") == attention
        assert _sum(model, f"dialog_rnn_{d}.l_cell.") == listener
    assert (_sum(model, "linear."), _sum(model, "matchatt."), _sum(model, "smax_fc.")) == (5_200, 4_160, 486)


def test_dialoguegcn_other_configuration():
    """D_e 64, graph 48, 3 speakers (18 relations), max_seq_len 50, windows 3 / 5."""
    model = MODELS.create("dialoguegcn", _spec(IEMOCAP_MM, speakers=3), hidden=64, graph_hidden=48, max_len=50,
                          window_past=3, window_future=5, modalities=("text",))
    assert model.num_parameters() == 395_218
    got = {k: _sum(model, k + ".") for k in ("lstm", "edge_att", "conv1", "conv2", "linear", "smax_fc")}
    assert got == {"lstm": 184_320, "edge_att": 6_400, "conv1": 191_052, "conv2": 4_656, "linear": 8_496,
                   "smax_fc": 294}
    assert (model.conv1.basis.shape, model.conv1.comp.shape) == ((30, 128, 48), (18, 30))


def test_dialoguegcn_readme_command_uses_nodal_attention():
    p = presets_of(MODELS.get("dialoguegcn"))["iemocap"]
    model = MODELS.create("dialoguegcn", p.spec(), preset="iemocap", nodal_attention=True, dropout=0.4)
    assert model.num_parameters() == 1_186_646 and _sum(model, "matchatt.") == 90_300


@pytest.mark.parametrize(("hidden", "graph_hidden", "layers", "speakers", "graph_params"), [
    (100, 100, 64, 2, (20_100, 1_280_000, 400)),
    (100, 100, 4, 2, (20_100, 80_000, 400)),  # what --Deep_GCN_nlayers 4 would have built
    (32, 48, 8, 3, (3_120, 36_864, 192)),
])
def test_mmgcn_graph_network_at_other_depths_and_widths(hidden, graph_hidden, layers, speakers, graph_params):
    """The release's MM_GCN alone (n_dim = 2 hidden): input layer, GCNII layers, speaker embedding."""
    model = MODELS.create("mmgcn", _spec(IEMOCAP_MM, speakers=speakers), hidden=hidden, graph_hidden=graph_hidden,
                          layers=layers)
    got = (_sum(model, "gcn_in."), _sum(model, "gcn_layers."), _sum(model, "speaker_embeddings."))
    assert got == graph_params


def test_sdt_other_width():
    model = MODELS.create("sdt", _spec(IEMOCAP_SDT), d=256, heads=4, dropout=0.5)
    assert model.num_parameters() == 5_564_952
    assert _sum(model, "encoders.audio_to_text.") == 395_264


def test_sdt_two_layer_encoder():
    """The release's TransformerEncoder(d 64, d_ff 64, 4 heads, 2 layers): the second layer's
    LayerNorm is used, the first's is not (50,432 created, 50,304 used)."""
    model = MODELS.create("sdt", _spec({"text": 20, "audio": 12, "video": 8}), d=64, heads=4, layers=2)
    assert _sum(model, "encoders.text_to_text.") == 50_304
    assert _sum(model, "encoders.audio_to_text.") == 50_304
