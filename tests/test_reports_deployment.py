"""Deployment profile on a tiny text-only model and the deployment table."""

from __future__ import annotations

import pytest

from harness import MODELS
from harness.profile import FIELDS, deployment_profile, mean_utterance_duration
from reports.deployment import deployment_table


@pytest.fixture(scope="module")
def profile(tiny_dataset):
    model = MODELS.create("text-only", tiny_dataset.spec)
    dur = mean_utterance_duration(tiny_dataset)
    assert 0.6 <= dur <= 1.2  # the synthetic generator draws 0.6 .. 1.2 s
    return deployment_profile(model, tiny_dataset.spec, device="cpu", n_utts_max=4, repeats=2, warmup=1, frames=5,
                              utterance_duration_s=dur)


def test_profile_fields_and_orderings(profile, tiny_dataset):
    assert set(FIELDS) <= set(profile)
    model = MODELS.create("text-only", tiny_dataset.spec)
    assert profile["params"] == model.num_parameters() > 0
    assert profile["flops_per_utt"] > 0
    assert 0 < profile["latency_ms_p50"] <= profile["latency_ms_p95"] <= profile["latency_ms_p99"]
    assert profile["rtf"] > 0 and profile["rtf"] == pytest.approx(
        profile["latency_ms_p50"] / 1000 / profile["utterance_duration_s"])
    assert profile["throughput_utt_s"] > 0
    weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    assert profile["peak_mem_mb"] >= weights_mb
    assert profile["peak_mem_method"].startswith("cpu_")


def test_table_and_bad_input(profile, tiny_dataset):
    slow = {**profile, "latency_ms_p50": profile["latency_ms_p50"] * 10, "rtf": profile["rtf"] * 10}
    tex, md = deployment_table([profile, slow], names=["fast", "slow"])
    assert r"\toprule" in tex and r"\bottomrule" in tex
    rows = [ln for ln in md.splitlines() if ln.startswith("| fast") or ln.startswith("| slow")]
    assert len(rows) == 2 and rows[0].count("|") == 11
    assert "**" in rows[0].split("|")[5] and "**" not in rows[1].split("|")[5]  # p50 column
    with pytest.raises(ValueError, match="n_utts_max"):
        deployment_profile(MODELS.create("text-only", tiny_dataset.spec), tiny_dataset.spec, device="cpu", n_utts_max=0)
    with pytest.raises(ValueError, match="lacks"):
        deployment_table([{"model": "x"}])


def test_table_says_real_time_and_shows_failed_and_unknown_duration(profile):
    no_audio = {**profile, "rtf": None, "rtf_p95": None, "real_time": None, "utterance_duration_s": None}
    failed = {"status": "failed", "error": "CheckpointError: digest mismatch", "device": profile["device"]}
    _, md = deployment_table([profile, no_audio, failed], names=["a", "b", "c"])
    rows = {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln}
    assert rows["a"].rstrip(" |").endswith("yes" if profile["real_time"] else "no")
    assert rows["b"].rstrip(" |").endswith("n/a")
    assert "failed: CheckpointError: digest mismatch" in rows["c"]
