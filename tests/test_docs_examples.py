"""The Python examples of docs/PLUGINS.md run as written, and the plugins they register work.

Every ```python block of the page is executed in order in one shared namespace (the page's
blocks build on each other, as its introduction says). The example plugins it registers
(all named ``docs-example-*``) are then exercised, and removed from the registries when
the module's tests are done.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import CORRUPTIONS, DATASETS, EXTRACTORS, MODELS
from harness.data.collate import collate_dialogues, collate_utterances
from harness.data.types import DataSpec, Dialogue, RawMedia
from harness.errors import PresetError
from harness.registry import ALL_REGISTRIES
from harness.train import TrainConfig, fit, iter_batches

DOC = Path(__file__).resolve().parents[1] / "docs" / "PLUGINS.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
PREFIX = "docs-example-"
EXPECTED = {
    "models": {"docs-example-mean-fusion", "docs-example-context-gru"},
    "corruptions": {"docs-example-gain-jitter", "docs-example-level-drop"},
    "datasets": {"docs-example-npz"},
    "extractors": {"docs-example-energy"},
}
TINY = dict(n_train=2, n_valid=1, n_test=1, keep_raw=False, min_utts=2, max_utts=3)


def python_blocks(text: str) -> list[str]:
    """The source of every fenced ```python block of ``text``, in order."""
    return [m.group(1) for m in PYTHON_BLOCK.finditer(text)]


def _example_names() -> dict[str, set[str]]:
    return {kind: {n for n in reg._entries if n.startswith(PREFIX)} for kind, reg in ALL_REGISTRIES.items()}


@pytest.fixture(scope="module")
def doc_namespace():
    """Run the page's blocks once; unregister the example plugins afterwards."""
    stale = {k: v for k, v in _example_names().items() if v}
    assert not stale, f"example plugins registered before the page ran: {stale}"
    namespace: dict = {"__name__": "docs_plugins_examples"}
    try:
        for i, block in enumerate(python_blocks(DOC.read_text(encoding="utf-8"))):
            exec(compile(block, f"{DOC.name} python block {i + 1}", "exec"), namespace)  # noqa: S102
        yield namespace
    finally:
        for reg in ALL_REGISTRIES.values():
            for name in [n for n in reg._entries if n.startswith(PREFIX)]:
                del reg._entries[name]
        assert not any(_example_names().values())


@pytest.fixture(scope="module")
def tiny():
    return {task: DATASETS.create("synthetic", task=task, **TINY) for task in ("classification", "regression")}


@pytest.fixture(scope="module")
def tiny_raw():
    """Keeps raw media (waveforms) for the raw corruption and the extractor."""
    return DATASETS.create("synthetic", n_train=1, n_valid=1, n_test=2, min_utts=2, max_utts=3, seed=3)


def test_the_page_has_python_blocks_and_they_register_exactly_the_example_plugins(doc_namespace):
    assert len(python_blocks(DOC.read_text(encoding="utf-8"))) >= 10
    registered = _example_names()
    for kind, names in EXPECTED.items():
        assert registered[kind] == names, kind
    # the two refused classes were not registered
    assert "docs-example-not-a-model" not in MODELS
    assert "docs-example-not-a-corruption" not in CORRUPTIONS


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("name", sorted(EXPECTED["models"]))
def test_example_model_trains_a_step_with_the_right_shapes(doc_namespace, tiny, name, task):
    data = tiny[task]
    torch.manual_seed(0)
    model = MODELS.create(name, data.spec)
    batch = next(iter_batches(model, data.splits["train"], data.spec, batch_size=64))
    out = model(batch)
    c = data.spec.num_classes
    if model.level == "utterance":
        n = len(data.utterances("train"))
        assert out.prediction.shape == ((n, c) if task == "classification" else (n,))
    else:
        b, n_max = batch.mask.shape
        assert b == len(data.splits["train"])
        assert out.prediction.shape == ((b, n_max, c) if task == "classification" else (b, n_max))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss = model.loss(out, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    changed = sum(not torch.equal(a, p.detach()) for a, p in zip(before, model.parameters()))
    assert changed >= len(before) // 2
    result = fit(model, data, TrainConfig(epochs=1, amp=False), seed=0, device="cpu")
    assert result.best_epoch == 1


def test_example_losses_add_their_auxiliary_terms(doc_namespace, tiny):
    data = tiny["classification"]
    torch.manual_seed(0)
    mean_fusion = MODELS.create("docs-example-mean-fusion", data.spec, aux_weight=0.5).eval()
    batch = collate_utterances(data.utterances("train"), data.spec)
    out = mean_fusion(batch)
    assert out.aux_loss is not None and float(out.aux_loss.detach()) > 0
    assert torch.allclose(mean_fusion.loss(out, batch), mean_fusion.task_loss(out.prediction, batch) + out.aux_loss)

    gru = MODELS.create("docs-example-context-gru", data.spec, aux_weight=0.3).eval()
    dbatch = collate_dialogues(data.splits["train"], data.spec, gru.pooling)
    dout = gru(dbatch)
    aux = sum(gru.task_loss(p, dbatch) for p in dout.extras["modality_predictions"].values())
    assert torch.allclose(gru.loss(dout, dbatch), gru.task_loss(dout.prediction, dbatch) + 0.3 * aux)


def test_dialogue_example_predictions_do_not_depend_on_the_batch(doc_namespace, tiny):
    data = tiny["classification"]
    torch.manual_seed(0)
    model = MODELS.create("docs-example-context-gru", data.spec).eval()
    dialogues = sorted(data.splits["train"], key=len)
    with torch.no_grad():
        together = model(collate_dialogues(dialogues, data.spec, model.pooling)).prediction
        alone = model(collate_dialogues(dialogues[:1], data.spec, model.pooling)).prediction
    n = len(dialogues[0])
    torch.testing.assert_close(together[0, :n], alone[0, :n])


def test_example_preset_and_model_set(doc_namespace, tiny):
    data = tiny["classification"]
    model = MODELS.create("docs-example-mean-fusion", data.spec, preset="small-synthetic")
    assert model.project["text"].out_features == 16
    other = DataSpec(dims={"text": 8}, task="classification", num_classes=4)
    with pytest.raises(PresetError, match="expects input dims"):
        MODELS.create("docs-example-mean-fusion", other, preset="small-synthetic")
    sets = MODELS.get("docs-example-mean-fusion").metadata["model_sets"]
    assert [label for label, _ in sets["docs-example-sizes"]] == ["full", "hidden=8", "aux"]
    for _, options in sets["docs-example-sizes"]:
        MODELS.create("docs-example-mean-fusion", data.spec, **options)


def test_feature_corruption_is_identity_at_0_differs_at_3_and_is_paired(doc_namespace, tiny):
    test = tiny["classification"].splits["train"]
    jitter = CORRUPTIONS.create("docs-example-gain-jitter", modality="audio")
    assert all(a is b for a, b in zip(jitter(test, 0), test))
    originals = [u.features["audio"].clone() for d in test for u in d]
    out = jitter(test, 3, seed=7)
    flat = [u for d in out for u in d]
    assert all(u.features["audio"].shape == o.shape and u.features["audio"].dtype == torch.float32
               for u, o in zip(flat, originals))
    assert all(not torch.equal(u.features["audio"], o) for u, o in zip(flat, originals))
    # the input is untouched, and the other modalities are the same objects
    assert all(torch.equal(u.features["audio"], o) for u, o in zip((u for d in test for u in d), originals))
    assert all(u.features["text"] is v.features["text"] for u, v in zip(flat, (u for d in test for u in d)))
    # paired: the same seed gives the same draws in any order; another seed gives others
    again = {u.uid: u.features["audio"] for d in jitter(list(reversed(test)), 3, seed=7) for u in d}
    assert all(torch.equal(u.features["audio"], again[u.uid]) for u in flat)
    other = {u.uid: u.features["audio"] for d in jitter(test, 3, seed=8) for u in d}
    assert not all(torch.equal(u.features["audio"], other[u.uid]) for u in flat)


def test_feature_corruption_checks_every_utterance_before_corrupting(doc_namespace, tiny):
    dlg = tiny["classification"].splits["train"][0]
    last = dlg.utterances[-1]
    broken = Dialogue(dlg.dialogue_id, [*dlg.utterances[:-1], replace(last, features={"text": last.features["text"]})])
    jitter = CORRUPTIONS.create("docs-example-gain-jitter", modality="audio")
    for severity in (0, 3):
        with pytest.raises(ValueError, match=rf"utterance {re.escape(repr(last.uid))} has no 'audio' features"):
            jitter([broken], severity)


def test_raw_corruption_is_identity_at_0_and_changes_waveform_and_features_at_3(doc_namespace, tiny_raw):
    test = tiny_raw.splits["test"]
    drop = CORRUPTIONS.create("docs-example-level-drop").bind(tiny_raw)
    assert drop.extractor["name"] == tiny_raw.card["extractors"]["audio"]["name"]
    assert all(a is b for a, b in zip(drop(test, 0), test))
    out = drop(test, 3, seed=0)
    for d, e in zip(test, out):
        for u, v in zip(d, e):
            assert not np.array_equal(u.raw.waveform, v.raw.waveform)
            assert np.max(np.abs(v.raw.waveform)) <= np.max(np.abs(u.raw.waveform))
            assert v.features["audio"].shape == u.features["audio"].shape
            assert not torch.equal(u.features["audio"], v.features["audio"])
            assert torch.equal(u.features["video"], v.features["video"])
    again = drop(test, 3, seed=0)
    assert all(np.array_equal(u.raw.waveform, v.raw.waveform) for d, e in zip(out, again) for u, v in zip(d, e))
    with pytest.raises(ValueError, match="modality must be 'audio'"):
        CORRUPTIONS.create("docs-example-level-drop", modality="video")


def test_example_dataset_loads_and_trains(doc_namespace, tmp_path):
    rng = np.random.default_rng(1)
    for split, n_dialogues in (("train", 3), ("valid", 1), ("test", 1)):
        (tmp_path / split).mkdir()
        for d in range(n_dialogues):
            n = 2 + d
            np.savez(tmp_path / split / f"d{d}.npz", text=rng.standard_normal((n, 6)), audio=rng.standard_normal((n, 4)),
                     labels=rng.integers(0, 2, n), speakers=rng.integers(0, 3, n))
    data = DATASETS.create("docs-example-npz", path=str(tmp_path), class_names=["no", "yes"])
    assert data.spec.dims == {"text": 6, "audio": 4}
    assert data.spec.num_classes == 2 and data.spec.num_speakers <= 3
    assert data.counts() == {"train": {"dialogues": 3, "utterances": 9}, "valid": {"dialogues": 1, "utterances": 2},
                             "test": {"dialogues": 1, "utterances": 2}}
    u = data.splits["train"][2].utterances[3]
    assert u.uid == "train/d2/3" and u.position == 3
    assert u.features["text"].dtype == torch.float32 and u.features["text"].shape == (1, 6)
    # the page's own toy corpus loaded too
    assert doc_namespace["npz_data"].spec.dims == {"text": 16, "audio": 8, "video": 12}
    model = MODELS.create("docs-example-context-gru", data.spec)
    assert fit(model, data, TrainConfig(epochs=1, amp=False), seed=0, device="cpu").best_epoch == 1

    np.savez(tmp_path / "test" / "d9.npz", text=np.zeros((1, 6)), audio=np.zeros((1, 4)), labels=[5], speakers=[0])
    with pytest.raises(ValueError, match=r"d9\.npz: key 'labels', utterance 'test/d9/0': 5 is not in 0\.\.1"):
        DATASETS.create("docs-example-npz", path=str(tmp_path), class_names=["no", "yes"])
    with pytest.raises(Exception, match="has no option 'classes'"):
        DATASETS.create("docs-example-npz", path=str(tmp_path), classes=2)


def test_example_extractor_returns_t_by_dim(doc_namespace, tiny_raw):
    energy = EXTRACTORS.create("docs-example-energy")
    raws = [u.raw for u in tiny_raw.utterances("train")]
    feats = energy.extract(raws)
    for raw, x in zip(raws, feats):
        expected_t = 1 + (len(raw.waveform) - 400) // 160  # 25 ms windows every 10 ms at 16 kHz
        assert x.dtype == torch.float32 and x.shape == (expected_t, energy.dim)
        assert torch.isfinite(x).all()
    assert energy.config() == {"name": "docs-example-energy", "sample_rate": 16000, "win_ms": 25.0, "hop_ms": 10.0}
    with pytest.raises(ValueError, match="item 0 has no waveform"):
        energy.extract([RawMedia(transcript="no audio here")])
    with pytest.raises(ValueError, match="sampled at 8000 Hz, expected 16000"):
        energy.extract([RawMedia(waveform=np.zeros(800, np.float32), sample_rate=8000)])
