"""Why ``harness.layers.resample`` (EF-LSTM, MFN) still calls ``F.interpolate``: the deterministic
resampler (``harness.resample.linear_resample``) computes the same interpolation, but not bit for
bit on the CPU, so switching would move the numbers of every run that trains ``early-fusion``
(the demo's included) or ``mfn``. docs/PERFORMANCE.md says so; this test measures it on the
demo's inputs, and fails (so the switch can be made freely) once the two agree bit for bit."""

from __future__ import annotations

import torch

from harness import DATASETS, MODELS
from harness.data.collate import collate_utterances
from harness.layers import resample
from harness.resample import linear_resample


def test_the_deterministic_resampler_matches_interpolate_only_to_float32_rounding():
    data = DATASETS.create("synthetic", n_train=4, n_valid=1, n_test=1, keep_raw=False)
    model = MODELS.create("early-fusion", data.spec, hidden=128, dropout=0.238)  # the demo's configuration
    batch = collate_utterances(data.utterances("train"), data.spec)
    differ = 0
    for m in data.spec.dims:
        x = batch.inputs[m].detach().clone().requires_grad_(True)
        ours, theirs = resample(x, batch.lengths[m], model.align_len), linear_resample(x, batch.lengths[m], model.align_len)
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4)  # the same interpolation...
        differ += not torch.equal(ours, theirs)
        (g_ours,) = torch.autograd.grad(ours.sum(), x)
        (g_theirs,) = torch.autograd.grad(theirs.sum(), x)
        torch.testing.assert_close(g_ours, g_theirs, rtol=0, atol=1e-4)
    assert differ > 0  # ...but not bit for bit: early-fusion would train along another path
