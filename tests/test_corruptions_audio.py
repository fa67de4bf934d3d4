"""Raw-audio specifics: achieved SNR, schedules, background noise files, re-extraction,
binding errors, reverberation RT60, and the denoising / video defences."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from corruptions.audio import SNR_TABLE, snr_db, synthetic_rir
from corruptions.schedules import RISE_DB
from harness import CORRUPTIONS, DATASETS, DEFENSES, EXTRACTORS

ADDITIVE = ["audio-white", "audio-pink", "audio-brown", "audio-babble"]


@pytest.fixture(scope="module")
def ds():
    return DATASETS.create("synthetic", n_train=1, n_valid=1, n_test=3, min_utts=2, max_utts=4, seed=3)


def pairs(a, b):
    return [(u, v) for d0, d1 in zip(a, b) for u, v in zip(d0, d1)]


@pytest.mark.parametrize("schedule", ["stationary", "bursts", "spikes"])
@pytest.mark.parametrize("name", ADDITIVE)
def test_achieved_snr_matches_target(name, schedule, ds):
    c = CORRUPTIONS.create(name, schedule=schedule, extractor="none")
    last = np.inf
    for s in range(1, 6):
        out = c(ds.splits["test"], s, 0)
        snrs = [snr_db(u.raw.waveform, v.raw.waveform) for u, v in pairs(ds.splits["test"], out)]
        assert np.allclose(snrs, SNR_TABLE[s], atol=0.1), (s, snrs)
        assert np.mean(snrs) < last  # the achieved SNR falls with severity
        last = np.mean(snrs)


def test_gated_schedules_concentrate_the_noise(ds):
    u = ds.splits["test"][0].utterances[0]
    for schedule in ("bursts", "spikes"):
        out = CORRUPTIONS.create("audio-white", schedule=schedule, extractor="none")(ds.splits["test"], 3, 0)
        noise = out[0].utterances[0].raw.waveform.astype(np.float64) - u.raw.waveform
        silent = np.mean(np.abs(noise) < 1e-6)
        assert silent > (0.2 if schedule == "bursts" else 0.8), (schedule, silent)


def test_rising_schedule_lowers_snr_through_the_dialogue(ds):
    c = CORRUPTIONS.create("audio-white", schedule="rising", extractor="none")
    d = max(ds.splits["test"], key=len)
    out = c([d], 2, 0)[0]
    snrs = [snr_db(u.raw.waveform, v.raw.waveform) for u, v in zip(d, out)]
    n = len(d)
    expected = [SNR_TABLE[2] + RISE_DB * (1 - i / (n - 1)) for i in range(n)]
    assert np.allclose(snrs, expected, atol=0.1)
    assert all(a > b for a, b in zip(snrs, snrs[1:]))


def test_background_noise_from_folder(tmp_path, ds):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "hum.wav", (0.1 * np.sin(np.arange(8000) * 0.05)).astype(np.float32), 8000)  # resampled
    sf.write(tmp_path / "hiss.wav", (0.05 * rng.standard_normal((4000, 2))).astype(np.float32), 16000)  # stereo
    c = CORRUPTIONS.create("audio-background", noise_dir=str(tmp_path)).bind(ds)
    out = c(ds.splits["test"], 4, 0)
    snrs = [snr_db(u.raw.waveform, v.raw.waveform) for u, v in pairs(ds.splits["test"], out)]
    assert np.allclose(snrs, SNR_TABLE[4], atol=0.1)
    with pytest.raises(ValueError, match="noise_dir"):
        CORRUPTIONS.create("audio-background", noise_dir=str(tmp_path / "missing"))


def test_features_are_re_extracted_from_the_corrupted_media(ds):
    c = CORRUPTIONS.create("audio-pink").bind(ds)
    out = c(ds.splits["test"], 5, 1)
    cfg = dict(ds.card["extractors"]["audio"])
    ex = EXTRACTORS.create(cfg.pop("name"), **cfg)
    for u, v in pairs(ds.splits["test"], out):
        assert torch.equal(v.features["audio"], ex.extract([v.raw])[0])
        assert not torch.equal(v.features["audio"], u.features["audio"])
        assert torch.equal(v.features["text"], u.features["text"])  # other modalities untouched
    text = CORRUPTIONS.create("text-substitution").bind(ds)(ds.splits["test"], 5, 1)
    cfg = dict(ds.card["extractors"]["text"])
    tex = EXTRACTORS.create(cfg.pop("name"), **cfg)
    for _u, v in pairs(ds.splits["test"], text):
        assert torch.equal(v.features["text"], tex.extract([v.raw])[0])


def test_unbound_and_raw_less_inputs_raise_clear_errors(ds):
    with pytest.raises(ValueError, match="bind"):
        CORRUPTIONS.create("audio-white")(ds.splits["test"], 2, 0)
    no_raw = DATASETS.create("synthetic", n_train=1, n_valid=1, n_test=1, min_utts=2, max_utts=2, seed=3, keep_raw=False)
    with pytest.raises(ValueError, match="no raw waveform"):
        CORRUPTIONS.create("audio-white").bind(no_raw)(no_raw.splits["test"], 2, 0)
    with pytest.raises(ValueError, match="schedule"):
        CORRUPTIONS.create("audio-white", schedule="sometimes")
    with pytest.raises(ValueError, match="severity"):
        CORRUPTIONS.create("audio-white").bind(ds)(ds.splits["test"], 6, 0)


def _rt60(rir, sr):
    """RT60 from Schroeder backward integration (T20 fit between -5 and -25 dB, times 3)."""
    e = np.cumsum((rir.astype(np.float64) ** 2)[::-1])[::-1]
    db = 10 * np.log10(e / e[0])
    t5, t25 = np.argmax(db <= -5), np.argmax(db <= -25)
    return 3 * (t25 - t5) / sr


def test_reverb_rir_rt60_grows_and_matches_table():
    sr = 16000
    table = CORRUPTIONS.get("audio-reverb").obj.table
    measured = [_rt60(synthetic_rir(table[s], sr, np.random.default_rng(s)).numpy(), sr) for s in range(1, 6)]
    assert all(b > a for a, b in zip(measured, measured[1:]))
    assert np.allclose(measured, [table[s] for s in range(1, 6)], rtol=0.25), measured


def test_reverb_keeps_loudness_and_smears(ds):
    out = CORRUPTIONS.create("audio-reverb", extractor="none")(ds.splits["test"], 4, 0)
    for u, v in pairs(ds.splits["test"], out):
        a, b = u.raw.waveform.astype(np.float64), v.raw.waveform.astype(np.float64)
        assert np.isclose(np.sqrt(np.mean(a**2)), np.sqrt(np.mean(b**2)), rtol=1e-3)
        assert snr_db(a, b) < 5


@pytest.mark.parametrize("options", [{"stationary": True}, {"stationary": False}, {"backend": "torchgate"}])
def test_spectral_denoise_defense(options, ds):
    noisy = CORRUPTIONS.create("audio-white").bind(ds)(ds.splits["test"][:1], 4, 0)
    clean = DEFENSES.create("denoise-spectral", **options).bind(ds)(noisy)
    for u, v in pairs(noisy, clean):
        assert v.raw.waveform.shape == u.raw.waveform.shape and v.raw.waveform.dtype == np.float32
        assert not np.array_equal(v.raw.waveform, u.raw.waveform)
        assert v.features["audio"].shape == u.features["audio"].shape
    again = DEFENSES.create("denoise-spectral", **options).bind(ds)(noisy)
    assert all(np.array_equal(a.raw.waveform, b.raw.waveform) for a, b in pairs(clean, again))


def test_temporal_median_defense_removes_glitches(ds):
    test = ds.splits["test"]
    glitched = CORRUPTIONS.create("video-noise").bind(ds)(test, 4, 0)
    fixed = DEFENSES.create("video-temporal-median", window=3).bind(ds)(glitched)

    def err(a):
        return np.mean([np.abs(v.raw.frames.astype(float) - u.raw.frames).mean() for u, v in pairs(test, a)])

    assert err(fixed) < err(glitched)
    for u, v in pairs(glitched, fixed):
        assert v.raw.frames.shape == u.raw.frames.shape and v.raw.frames.dtype == np.uint8
    with pytest.raises(ValueError, match="window"):
        DEFENSES.create("video-temporal-median", window=2)
