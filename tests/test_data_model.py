import pytest
import torch

from harness.data import DataSpec, Dialogue, Utterance, collate_dialogues, collate_utterances, flat_targets, flat_uids
from harness.data.collate import IGNORE_INDEX, pool


def _utt(uid, t, d=3, label=1, speaker=0, value=1.0):
    return Utterance(uid=uid, dialogue_id="d", position=0, speaker=speaker,
                     features={"text": torch.full((t, d), value), "audio": torch.arange(t * 2, dtype=torch.float32).view(t, 2)},
                     label=label)


SPEC = DataSpec(dims={"text": 3, "audio": 2}, num_classes=3, num_speakers=2)


def test_collate_utterances_pads_and_reports_lengths():
    b = collate_utterances([_utt("a", 2), _utt("b", 4, label=2)], SPEC)
    assert b.inputs["text"].shape == (2, 4, 3)
    assert b.lengths["text"].tolist() == [2, 4]
    assert b.inputs["text"][0, 2:].abs().sum() == 0  # zero padding
    assert b.labels.tolist() == [1, 2]
    assert b.frame_mask("audio").tolist() == [[True, True, False, False], [True] * 4]


def test_collate_dialogues_pools_masks_and_pads():
    d1 = Dialogue("d1", [_utt("x0", 2, value=2.0), _utt("x1", 3, speaker=1)])
    d2 = Dialogue("d2", [_utt("y0", 1, label=0)])
    b = collate_dialogues([d1, d2], SPEC, pooling="mean")
    assert b.inputs["text"].shape == (2, 2, 3)
    assert b.mask.tolist() == [[True, True], [True, False]]
    assert b.speakers.tolist() == [[0, 1], [0, 0]]
    assert b.labels.tolist() == [[1, 1], [0, IGNORE_INDEX]]
    assert torch.allclose(b.inputs["text"][0, 0], torch.full((3,), 2.0))
    assert torch.allclose(b.inputs["audio"][0, 1], torch.tensor([2.0, 3.0]))  # mean of [[0,1],[2,3],[4,5]]
    assert flat_targets(b).tolist() == [1, 1, 0]
    assert flat_uids(b) == ["x0", "x1", "y0"]


@pytest.mark.parametrize("rule,expected", [("mean", 2.0), ("max", 4.0), ("first", 0.0), ("last", 4.0)])
def test_pooling_rules(rule, expected):
    x = torch.tensor([[0.0], [2.0], [4.0]])
    assert pool(x, rule).item() == expected


def test_bad_specs_and_rules_raise_clear_errors():
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        DataSpec(dims={"text": 3}, num_classes=1)
    with pytest.raises(ValueError, match=r"dims\['text'\] must be a positive int"):
        DataSpec(dims={"text": 0}, num_classes=2)
    with pytest.raises(ValueError, match="pooling rule must be one of"):
        collate_dialogues([Dialogue("d", [_utt("a", 1)])], SPEC, pooling="median")


def test_missing_label_is_named():
    u = _utt("nolabel", 2)
    u.label = None
    with pytest.raises(ValueError, match="'nolabel' has no class label"):
        collate_utterances([u], SPEC)
