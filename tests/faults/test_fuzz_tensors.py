"""Item 3, bad inputs: tensors. Every registered model, at a tiny size, is fed test dialogues
with one fault planted (NaN, ±inf, huge values, zero-length or wrong-width features, a missing
modality, an all-zero (all-padding) dialogue, a dialogue without utterances, an impossible
label). The outcome is finite predictions or a ValueError from the harness naming the
utterance and the modality: never an error from deep inside torch, never a NaN scored."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness import DATASETS, MODELS
from harness.data.collate import InputError
from harness.data.types import Dialogue
from harness.train import NonFiniteOutputError, predict

from ._helpers import TALLY, fuzz_settings

pytestmark = pytest.mark.faults

TINY: dict[str, dict] = {  # the sizes of tests/test_baselines.py and tests/test_mcer_model.py
    "text-only": {"hidden": 8}, "audio-only": {"hidden": 8}, "video-only": {"hidden": 8},
    "early-fusion": {"hidden": 8, "layers": 2, "align_len": 4}, "late-fusion": {"hidden": 8},
    "tfn": {"text_hidden": 4, "text_out": 4, "audio_hidden": 4, "video_hidden": 4, "post_fusion_dim": 16},
    "lmf": {"text_hidden": 8, "text_out": 8, "audio_hidden": 8, "video_hidden": 8, "rank": 2},
    "lf-dnn": {"text_hidden": 8, "text_out": 8, "audio_hidden": 4, "video_hidden": 4, "post_fusion_dim": 8},
    "mult": {"d": 8, "heads": 2, "layers": 1, "memory_layers": 1, "text_kernel": 3},
    "misa": {"hidden": 8, "heads": 2, "ff_dim": 16},
    "mfn": {"text_hidden": 8, "audio_hidden": 4, "video_hidden": 4, "mem": 8, "align_len": 4}, "bc-lstm": {"hidden": 8}, "dialoguernn": {"hidden": 8},
    "dialoguegcn": {"hidden": 8, "window": 2}, "mmgcn": {"hidden": 8, "layers": 2},
    "sdt": {"d": 8, "heads": 2, "layers": 1}, "mcer": {"hidden": 16, "heads": 2, "window": 3},
    "mcer-reference": {"hidden": 16, "heads": 2, "fusion_heads": 2, "window": 3},  # released structure, tiny sizes
}
MODEL_NAMES = [n for n in MODELS if not n.startswith("faults-")]
EXAMPLES: dict[str, int] = {}  # per-model example counts where the default is too slow
FAULTS = ("nan", "inf", "-inf", "huge", "max-float", "zero-length", "wrong-width", "missing", "all-zero",
          "empty-dialogue", "bad-label")
MUST_REFUSE = {"nan", "inf", "-inf", "zero-length", "wrong-width", "missing", "bad-label"}


def test_every_registered_model_is_fuzzed():
    assert set(MODEL_NAMES) <= set(TINY), f"give new models a tiny size here: {set(MODEL_NAMES) - set(TINY)}"


@functools.cache
def _data():
    return {task: DATASETS.create("synthetic", n_train=1, n_valid=1, n_test=3, min_utts=2, max_utts=4, keep_raw=False,
                                  task=task) for task in ("classification", "regression")}


@functools.cache
def _model(name: str, task: str):
    torch.manual_seed(0)
    return MODELS.create(name, _data()[task].spec, **TINY[name]).eval()


def _plant(dialogues: list[Dialogue], fault: str, modality: str, d: int, u: int, spec) -> list[Dialogue]:
    dialogues = [Dialogue(x.dialogue_id, list(x.utterances)) for x in dialogues]
    dlg = dialogues[d % len(dialogues)]
    if fault == "empty-dialogue":
        dlg.utterances = []
        return dialogues
    if fault == "all-zero":
        dlg.utterances = [x.with_features({m: torch.zeros_like(f) for m, f in x.features.items()})
                          for x in dlg.utterances]
        return dialogues
    i = u % len(dlg.utterances)
    utt = dlg.utterances[i]
    x = utt.features[modality].clone()
    if fault == "bad-label":
        new = replace(utt, label=spec.num_classes + 3) if spec.task == "classification" else replace(utt, score=float("nan"))
    elif fault == "missing":
        new = replace(utt, features={m: f for m, f in utt.features.items() if m != modality})
    elif fault == "zero-length":
        new = utt.with_features({modality: x[:0]})
    elif fault == "wrong-width":
        new = utt.with_features({modality: torch.zeros(x.shape[0], x.shape[1] + 1)})
    else:
        value = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"), "huge": 1e30,
                 "max-float": float(np.finfo(np.float32).max)}[fault]
        x[x.shape[0] // 2, x.shape[1] // 3] = value
        new = utt.with_features({modality: x})
    dlg.utterances = [*dlg.utterances[:i], new, *dlg.utterances[i + 1:]]
    return dialogues


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_inputs_fail_clearly_or_predict_finite(name):
    @fuzz_settings(max_examples=EXAMPLES.get(name, 40))
    @given(task=st.sampled_from(["classification", "regression"]), fault=st.sampled_from(FAULTS),
           modality=st.sampled_from(["text", "audio", "video"]), d=st.integers(0, 5), u=st.integers(0, 5))
    def run(task, fault, modality, d, u):
        TALLY["fuzzed inputs"] += 1
        data = _data()[task]
        model = _model(name, task)
        dialogues = _plant(data.splits["test"], fault, modality, d, u, data.spec)
        try:
            preds = predict(model, dialogues, data.spec, "cpu")
        except InputError as exc:
            msg = str(exc)
            assert fault in MUST_REFUSE or fault in ("huge", "max-float", "empty-dialogue"), (fault, msg)
            if fault == "empty-dialogue":
                assert "has no utterances" in msg
            elif fault == "bad-label":
                assert "label" in msg or "score" in msg
            else:
                assert f"modality {modality!r}" in msg and "utterance " in msg, msg
            return
        except NonFiniteOutputError as exc:  # overflow inside the model: refused, not scored
            assert fault in ("huge", "max-float"), (fault, str(exc))
            assert "refusing to score" in str(exc)
            return
        assert fault not in MUST_REFUSE, f"{name}: {fault} in {modality} was not refused"
        assert np.isfinite(preds.outputs).all()
        assert len(preds.uids) == len(set(preds.uids)) == sum(len(x.utterances) for x in dialogues)

    run()
