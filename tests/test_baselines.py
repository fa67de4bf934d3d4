"""Acceptance tests of every registered baseline: shapes for both tasks, padding invariance,
gradients reaching every parameter, and overfitting a tiny batch."""

from __future__ import annotations

import pytest
import torch

from harness import DATASETS, MODELS
from harness.data.collate import collate_dialogues, collate_utterances
from harness.models import as_output

# Tiny hidden sizes so the whole module runs in well under a minute on the CPU.
TINY: dict[str, dict] = {
    "text-only": {"hidden": 8},
    "audio-only": {"hidden": 8},
    "video-only": {"hidden": 8},
    "early-fusion": {"hidden": 8, "layers": 2, "align_len": 4},
    "late-fusion": {"hidden": 8},
    "tfn": {"text_hidden": 4, "text_out": 4, "audio_hidden": 4, "video_hidden": 4, "post_fusion_dim": 16},
    "lmf": {"text_hidden": 8, "text_out": 8, "audio_hidden": 8, "video_hidden": 8, "rank": 2},
    "lf-dnn": {"text_hidden": 8, "text_out": 8, "audio_hidden": 4, "video_hidden": 4, "post_fusion_dim": 8},
    "mult": {"d": 8, "heads": 2, "layers": 1, "memory_layers": 1, "text_kernel": 3},
    "misa": {"hidden": 8, "heads": 2, "ff_dim": 16},
    "mfn": {"text_hidden": 8, "audio_hidden": 4, "video_hidden": 4, "mem": 8, "align_len": 4},
    "bc-lstm": {"hidden": 8},
    "dialoguernn": {"hidden": 8},
    "dialoguegcn": {"hidden": 8, "window": 2},
    "mmgcn": {"hidden": 8, "layers": 2},
    "sdt": {"d": 8, "heads": 2, "layers": 1},
}
NAMES = [n for n in TINY if n in MODELS]
FUSION = ["late-fusion", "lf-dnn", "tfn", "lmf", "mult", "misa", "mfn", "bc-lstm", "dialoguernn", "dialoguegcn", "mmgcn", "sdt"]


@pytest.fixture(scope="module")
def data():
    return {
        "classification": DATASETS.create("synthetic", n_train=6, n_valid=2, n_test=2, keep_raw=False,
                                          min_utts=3, max_utts=6),
        "regression": DATASETS.create("synthetic", n_train=6, n_valid=2, n_test=2, keep_raw=False,
                                      min_utts=3, max_utts=6, task="regression"),
    }


def _make(name: str, ds, seed: int = 0, **extra):
    torch.manual_seed(seed)
    return MODELS.create(name, ds.spec, **{**TINY[name], **extra})


def _batch(model, dialogues, spec):
    if model.level == "dialogue":
        return collate_dialogues(dialogues, spec, model.pooling)
    return collate_utterances([u for d in dialogues for u in d.utterances], spec)


def test_every_fusion_method_is_registered_with_its_paper():
    for name in FUSION:
        entry = MODELS.get(name)
        assert entry.metadata.get("level") in ("utterance", "dialogue"), name
        assert entry.metadata.get("paper"), name
        assert entry.obj.level == entry.metadata["level"], name


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("name", NAMES)
def test_output_shapes(name, task, data):
    ds = data[task]
    model = _make(name, ds).eval()
    dialogues = ds.splits["train"][:3]
    batch = _batch(model, dialogues, ds.spec)
    with torch.no_grad():
        pred = as_output(model(batch)).prediction
    if model.level == "dialogue":
        lead = tuple(batch.mask.shape)
    else:
        lead = (sum(len(d) for d in dialogues),)
    expected = lead + ((ds.spec.num_classes,) if task == "classification" else ())
    assert tuple(pred.shape) == expected
    assert torch.isfinite(pred).all()


@pytest.mark.parametrize("name", NAMES)
def test_padding_invariance(name, data):
    ds = data["classification"]
    model = _make(name, ds).eval()
    dialogues = sorted(ds.splits["train"], key=len)
    short, longer = dialogues[0], dialogues[-2:]
    with torch.no_grad():
        if model.level == "dialogue":
            alone = as_output(model(collate_dialogues([short], ds.spec, model.pooling))).prediction[0, : len(short)]
            both = as_output(model(collate_dialogues([short, *longer], ds.spec, model.pooling))).prediction[0, : len(short)]
        else:
            # the shortest utterance by text length, alone vs batched with the longest ones
            utts = sorted(ds.utterances("train"), key=lambda u: u.length("text"))
            u, others = utts[0], utts[-3:]
            alone = as_output(model(collate_utterances([u], ds.spec))).prediction[0]
            both = as_output(model(collate_utterances([u, *others], ds.spec))).prediction[0]
    torch.testing.assert_close(alone, both, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name, data):
    ds = data["classification"]
    model = _make(name, ds).train()
    # dialogue models see every training dialogue, so every speaker/temporal relation occurs
    dialogues = ds.splits["train"] if model.level == "dialogue" else ds.splits["train"][:2]
    batch = _batch(model, dialogues, ds.spec)
    out = as_output(model(batch))
    model.loss(out, batch).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: no gradient for {missing}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"{name}: non-finite gradient for {bad}"


@pytest.mark.parametrize("name", NAMES)
def test_overfits_a_tiny_batch(name, data):
    ds = data["classification"]
    model = _make(name, ds, seed=1, dropout=0.0).train()
    batch = _batch(model, ds.splits["train"][:2 if model.level == "dialogue" else 1], ds.spec)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        out = as_output(model(batch))
        loss = model.task_loss(out.prediction, batch)
        total = loss + out.aux_loss if out.aux_loss is not None else loss
        total.backward()
        opt.step()
        losses.append(loss.item())
        if loss.item() < 0.5 * losses[0]:
            break
    assert min(losses) < 0.5 * losses[0], f"{name}: task loss {losses[0]:.3f} -> {min(losses):.3f}"


@pytest.mark.parametrize("name", ["tfn", "lmf", "mult"])
def test_bad_options_name_the_argument(name, data):
    key = {"tfn": "text_hidden", "lmf": "rank", "mult": "layers"}[name]
    with pytest.raises(ValueError, match=key):
        MODELS.create(name, data["classification"].spec, **{key: 0})


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("name", [n for n in ("misa", "sdt") if n in MODELS])
def test_auxiliary_losses_are_finite_and_learnable(name, task, data):
    """MISA returns its weighted CMD/difference/reconstruction loss in aux_loss; SDT adds its
    students' task and distillation losses in loss(). Both must enter the training objective."""
    ds = data[task]
    model = _make(name, ds).train()
    batch = _batch(model, ds.splits["train"][:3], ds.spec)
    out = as_output(model(batch))
    total = model.loss(out, batch)
    task_only = model.task_loss(out.prediction, batch)
    assert torch.isfinite(total)
    assert total.item() > task_only.item()
    if name == "misa":
        assert out.aux_loss is not None and out.aux_loss.item() > 0
        assert as_output(model.eval()(batch)).aux_loss is None  # evaluation does not pay for it
    total.backward()
    grads = [p.grad for n, p in model.named_parameters() if n.startswith(("students", "decoders"))]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
