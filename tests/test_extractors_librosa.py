"""The log-mel and MFCC extractors against librosa's conventions (docs/EXTRACTORS.md), and the
MFCC's DCT (scipy.fft) against the hand-written DCT-II basis it replaced."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from harness import EXTRACTORS
from harness.data.types import RawMedia
from harness.datasets.media import decode_audio
from harness.extractors.audio import LogMel

SR = 16000
SPEECH = Path(__file__).parent / "fixtures" / "speech" / "s1_calm.wav"


def _noise(seconds: float = 1.0) -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(int(SR * seconds))).astype(np.float32)


def _old_dct_basis(n_in: int, n_out: int) -> torch.Tensor:
    """The orthonormal DCT-II basis ``[n_in, n_out]`` the MFCC extractor multiplied by before it used scipy.fft."""
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    d = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    d[:, 0] /= np.sqrt(2.0)
    return torch.tensor(d, dtype=torch.float32)


def test_mfcc_with_scipy_dct_equals_the_hand_written_dct():
    media = [RawMedia(waveform=decode_audio(SPEECH, SR), sample_rate=SR), RawMedia(waveform=_noise(), sample_rate=SR)]
    for n_mfcc, n_mels in ((13, 40), (20, 64)):
        mels = LogMel(n_mels=n_mels, hop_ms=10.0).extract(media)
        frames = EXTRACTORS.create("mfcc", n_mfcc=n_mfcc, n_mels=n_mels, stats=False).extract(media)
        stats = EXTRACTORS.create("mfcc", n_mfcc=n_mfcc, n_mels=n_mels).extract(media)
        for mel, new, row in zip(mels, frames, stats):
            old = mel @ _old_dct_basis(n_mels, n_mfcc)
            assert new.shape == old.shape and new.dtype == torch.float32
            assert torch.allclose(new, old, atol=1e-4, rtol=1e-5), float((new - old).abs().max())
            old_row = torch.cat([old.mean(0), old.std(0, unbiased=False)])
            assert torch.allclose(row[0], old_row, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("which", ["noise", "speech"])
def test_logmel_is_log_of_librosa_melspectrogram_plus_offset(which):
    """Our log-mel = ln(librosa.feature.melspectrogram(...) + 1e-6) with the parameters the docs give."""
    wave = _noise() if which == "noise" else decode_audio(SPEECH, SR)
    ours = LogMel(n_mels=40, win_ms=25.0, hop_ms=10.0).extract([RawMedia(waveform=wave, sample_rate=SR)])[0].numpy()
    mel = librosa.feature.melspectrogram(y=wave, sr=SR, n_fft=512, hop_length=160, win_length=400, window="hann",
                                         center=True, pad_mode="constant", power=2.0, n_mels=40, fmin=20.0,
                                         fmax=SR / 2, htk=False, norm="slaney")
    assert ours.shape == mel.T.shape == (1 + len(wave) // 160, 40)
    assert np.abs(ours - np.log(mel.T + 1e-6)).max() < 1e-4


def test_mfcc_is_librosa_mfcc_over_ten_log10_where_no_floor_applies():
    """librosa's MFCC is the DCT of 10 log10(mel): where mel >> 1e-6 (no silent frames) and without
    librosa's 80 dB top_db clipping, it equals ours times 10 / ln(10)."""
    wave = _noise()
    ours = EXTRACTORS.create("mfcc", n_mfcc=13, stats=False).extract([RawMedia(waveform=wave, sample_rate=SR)])[0]
    mel = librosa.feature.melspectrogram(y=wave, sr=SR, n_fft=512, hop_length=160, win_length=400,
                                         pad_mode="constant", n_mels=40, fmin=20.0, norm="slaney")
    theirs = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None), n_mfcc=13,
                                  dct_type=2, norm="ortho").T
    scale = 10.0 / np.log(10.0)
    assert mel.min() > 1e-4  # the relation's condition holds for this signal
    assert np.abs(theirs - scale * ours.numpy()).max() < 1e-3 * np.abs(theirs).max()
