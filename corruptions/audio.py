"""Raw-audio corruptions of ``utt.raw.waveform`` (float32 ``[S]``, 16 kHz in the datasets).

Randomness is drawn per utterance from :func:`harness.corruption.utterance_rng` (noise via a
CPU ``torch.Generator`` seeded from it, so the noise is the same on every device); the signal
processing (colouring, SNR scaling, gating, convolution, filtering) runs in torch on the
corruption's ``device``, one utterance at a time, and on the CPU with one intra-op thread. So
an utterance's output is a function of the utterance, the severity and the seed alone: not of
what it was corrupted with, in which order, or of the machine's thread count (a batched
reduction or FFT sums in an order that depends on the batch's shape and on how many threads
split it, which changes the last bits; on CUDA the reduction kernel's layout depends on the
number of rows).

Additive noises (``audio-white``, ``-pink``, ``-brown``, ``-babble``, ``-background``) are
scaled to a target SNR measured on the utterance actually used:
``SNR = 10 log10(mean(x^2) / mean(n^2))`` with ``n`` the noise actually added. Outputs are
not re-clipped to [-1, 1] (that would change the SNR); ``audio-clipping`` does clipping.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from corruptions.schedules import Schedule, check_schedule, gate, snr_for
from harness.corruption import RawCorruption, SeverityTable, UttContext
from harness.data.types import Utterance
from harness.options import DataPath, PositiveInt
from harness.registry import CORRUPTIONS
from harness.runtime import machine_independent_threads

SNR_TABLE = SeverityTable("snr_db", "dB", (float("inf"), 20.0, 15.0, 10.0, 5.0, 0.0), harsher="decreasing")


def torch_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**63 - 1))


NOISE_BANK_SAMPLES = 1 << 22  # 262 s at 16 kHz, 16 MiB
NOISE_BANK_SEED = 0x6D636572


@lru_cache(maxsize=1)
def noise_bank() -> torch.Tensor:
    """A fixed bank of unit-variance white Gaussian noise (float32 ``[2**22]``, CPU), the same in
    every process: additive noises take slices of it at per-utterance offsets."""
    return torch.randn(NOISE_BANK_SAMPLES, generator=torch.Generator().manual_seed(NOISE_BANK_SEED))


def white(n: int, rng: np.random.Generator) -> torch.Tensor:
    """Unit-variance white Gaussian noise ``[n]`` (float32, CPU), drawn from ``rng``."""
    g = torch.Generator().manual_seed(torch_seed(rng))
    return torch.randn(n, generator=g)


def rfft_rows(x: torch.Tensor, n: int | None = None) -> torch.Tensor:
    """``torch.fft.rfft`` of each row of ``[B, S]`` computed on its own: batched FFT plans are
    not bit-identical to single-row ones, and a row's result must not depend on its batch."""
    return torch.cat([torch.fft.rfft(row[None], n=n, dim=-1) for row in x], dim=0)


def irfft_rows(spec: torch.Tensor, n: int) -> torch.Tensor:
    return torch.cat([torch.fft.irfft(row[None], n=n, dim=-1) for row in spec], dim=0)


def colour(noise: torch.Tensor, exponent: float) -> torch.Tensor:
    """Shape white noise ``[B, n]`` to a ``1/f^exponent`` power spectrum (1 pink, 2 brown)."""
    if exponent == 0:
        return noise
    n = noise.shape[-1]
    spec = rfft_rows(noise)
    f = torch.arange(spec.shape[-1], device=noise.device, dtype=torch.float32)
    f[0] = 1.0 if len(f) < 2 else f[1]
    return irfft_rows(spec * f.pow(-exponent / 2.0), n)


def snr_db(clean: np.ndarray | torch.Tensor, noisy: np.ndarray | torch.Tensor) -> float:
    """Achieved SNR (dB) of ``noisy`` relative to ``clean``, computed in float64."""
    c = np.asarray(clean, dtype=np.float64)
    d = np.asarray(noisy, dtype=np.float64) - c
    return float(10 * np.log10(np.mean(c**2) / max(np.mean(d**2), 1e-300)))


class AudioCorruption(RawCorruption):
    """Base of raw-audio corruptions: runs :meth:`process` on each waveform alone (see the module doc)."""

    raw_field = "waveform"

    def __init__(self, modality: str = "audio", extractor: dict[str, Any] | str | None = None,
                 device: str = "auto") -> None:
        super().__init__(modality, extractor=extractor, device=device)

    def process(self, x: torch.Tensor, sr: int, severity: int, rngs: list[np.random.Generator],
                contexts: list[UttContext], utts: list[Utterance]) -> torch.Tensor:
        """Corrupt equal-length waveforms ``x`` ``[B, S]`` (float32 on the device) at ``sr`` Hz.

        :meth:`corrupt_raw` calls it with one waveform at a time (``B = 1``)."""
        raise NotImplementedError

    def corrupt_raw(self, utts: Sequence[Utterance], severity: int, rngs: Sequence[np.random.Generator],
                    contexts: Sequence[UttContext]) -> list[Any]:
        device = self.torch_device()
        for u in utts:
            w = u.raw.waveform
            if np.ndim(w) != 1:
                raise ValueError(f"{self.name}: utterance {u.uid!r} waveform has shape {np.shape(w)}, expected [S]")
            if not u.raw.sample_rate:
                raise ValueError(f"{self.name}: utterance {u.uid!r} has no sample_rate")
        out: list[Any] = []
        with machine_independent_threads(device):
            for u, r, c in zip(utts, rngs, contexts):
                x = torch.from_numpy(np.asarray(u.raw.waveform, dtype=np.float32)[None]).to(device)
                y = self.process(x, int(u.raw.sample_rate), severity, [r], [c], [u])
                out.append(np.ascontiguousarray(y[0].float().cpu().numpy()))
        return out


# ---------------------------------------------------------------------------------------
# additive noise at a target SNR
# ---------------------------------------------------------------------------------------

class AdditiveNoise(AudioCorruption):
    """Additive noise at the SNR of :data:`SNR_TABLE`, optionally on a temporal schedule."""

    table = SNR_TABLE
    exponent = 0.0  # spectral slope applied to the raw noise (1 pink, 2 brown)

    def __init__(self, modality: str = "audio", schedule: Schedule = "stationary",
                 extractor: dict[str, Any] | str | None = None, device: str = "auto") -> None:
        super().__init__(modality, extractor=extractor, device=device)
        self.schedule = check_schedule(schedule, self.name)

    def make_noise(self, utt: Utterance, n: int, sr: int, rng: np.random.Generator, ctx: UttContext,
                   out: torch.Tensor) -> None:
        """Write the raw (unscaled) noise for ``utt`` into ``out`` (float32 ``[n]``, CPU).

        The noise is a slice of :func:`noise_bank` at an offset and with a sign drawn from the
        utterance's own generator: a pure function of (seed, uid) like a fresh draw, without
        generating ``n`` normals per utterance (the cost that dominated). Utterances longer
        than the bank get a fresh draw.
        """
        bank = noise_bank()
        if n >= len(bank):
            torch.randn(n, generator=torch.Generator().manual_seed(torch_seed(rng)), out=out)
            return
        offset = int(rng.integers(0, len(bank) - n))
        torch.mul(bank[offset:offset + n], 1.0 if rng.random() < 0.5 else -1.0, out=out)

    def process(self, x, sr, severity, rngs, contexts, utts):
        b, n = x.shape
        noise = torch.empty(b, n)  # filled row by row: no per-utterance tensors to stack
        for i, (u, r, c) in enumerate(zip(utts, rngs, contexts)):
            self.make_noise(u, n, sr, r, c, noise[i])
        noise = colour(noise.to(x.device), self.exponent)
        gates = [gate(self.schedule, n, r, unit=sr // 1000) for r in rngs]
        if gates[0] is not None:
            noise = noise * torch.from_numpy(np.stack(gates)).to(x.device)
        snr = torch.tensor([snr_for(self.schedule, self.table[severity], c.position) for c in contexts],
                           dtype=torch.float64, device=x.device)
        # powers in float32 (relative error ~1e-6, i.e. ~1e-5 dB); the scale in float64
        ps = torch.linalg.vector_norm(x, dim=1).double().square().div(n).clamp_min(1e-12)
        pn = torch.linalg.vector_norm(noise, dim=1).double().square().div(n).clamp_min(1e-30)
        scale = torch.sqrt(ps / (pn * torch.pow(10.0, snr / 10.0))).float()
        return torch.addcmul(x, noise, scale[:, None], out=noise)


@CORRUPTIONS.register("audio-white")
class WhiteNoise(AdditiveNoise):
    """Additive white Gaussian noise at a target SNR (dB)."""

    title = "White noise"


@CORRUPTIONS.register("audio-pink")
class PinkNoise(AdditiveNoise):
    """Additive pink (1/f) noise at a target SNR (dB)."""

    title = "Pink noise"
    exponent = 1.0


@CORRUPTIONS.register("audio-brown")
class BrownNoise(AdditiveNoise):
    """Additive brown (1/f^2) noise at a target SNR (dB)."""

    title = "Brown noise"
    exponent = 2.0


def _loop_to(w: np.ndarray, n: int, offset: int) -> np.ndarray:
    """``n`` samples of ``w`` repeated cyclically, starting at ``offset``."""
    idx = (offset + np.arange(n)) % len(w)
    return w[idx]


@CORRUPTIONS.register("audio-babble")
class BabbleNoise(AdditiveNoise):
    """Babble: a mix of ``talkers`` other utterances of the dialogues passed in, at a target SNR.

    The talkers are drawn (by the utterance's own generator) from every other utterance in
    the call, sorted by uid, so the result does not depend on the order of the input; it does
    depend on the pool, which in a sweep is the whole test split for every model.
    """

    title = "Babble noise"

    def __init__(self, modality: str = "audio", talkers: PositiveInt = 4, schedule: Schedule = "stationary",
                 extractor: dict[str, Any] | str | None = None, device: str = "auto") -> None:
        super().__init__(modality, schedule=schedule, extractor=extractor, device=device)
        self.talkers = int(talkers)

    def make_noise(self, utt, n, sr, rng, ctx, out):
        others = [u for u in ctx.pool if u.uid != utt.uid and u.raw is not None and u.raw.waveform is not None
                  and len(u.raw.waveform) > 0]
        if not others:
            raise ValueError(f"audio-babble: utterance {utt.uid!r} has no other utterance with a waveform to make "
                             f"babble from; pass more than one utterance")
        picks = rng.choice(len(others), size=min(self.talkers, len(others)), replace=False)
        mix = np.zeros(n, dtype=np.float64)
        for k in sorted(int(p) for p in picks):
            w = np.asarray(others[k].raw.waveform, dtype=np.float64)
            w = w / max(np.sqrt(np.mean(w**2)), 1e-9)
            mix += _loop_to(w, n, int(rng.integers(0, len(w))))
        out.copy_(torch.from_numpy(mix.astype(np.float32)))


@CORRUPTIONS.register("audio-background")
class BackgroundNoise(AdditiveNoise):
    """Recorded background noise (the ``.wav`` files of ``noise_dir``) at a target SNR (dB).

    A file and a start offset are drawn per utterance; the recording loops when shorter than
    the utterance, is mixed to mono and resampled (polyphase) to the utterance's rate.
    """

    title = "Background noise"

    def __init__(self, modality: str = "audio", noise_dir: DataPath | None = None, schedule: Schedule = "stationary",
                 extractor: dict[str, Any] | str | None = None, device: str = "auto") -> None:
        super().__init__(modality, schedule=schedule, extractor=extractor, device=device)
        if noise_dir is None:
            raise ValueError("audio-background: noise_dir is required (a folder of .wav noise recordings), got None")
        folder = Path(noise_dir)
        files = sorted(folder.glob("*.wav")) if folder.is_dir() else []
        if not files:
            raise ValueError(f"audio-background: noise_dir {str(noise_dir)!r} must be a folder holding .wav files; "
                             f"{'it has none' if folder.is_dir() else 'it does not exist'}")
        self.noise_dir = str(noise_dir)
        self._files = files
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def _load(self, k: int, sr: int) -> np.ndarray:
        if (k, sr) not in self._cache:
            import soundfile as sf
            from scipy.signal import resample_poly

            data, file_sr = sf.read(str(self._files[k]), dtype="float64", always_2d=True)
            w = data.mean(axis=1)
            if file_sr != sr:
                g = np.gcd(int(file_sr), int(sr))
                w = resample_poly(w, sr // g, file_sr // g)
            if len(w) == 0 or not np.any(w):
                raise ValueError(f"audio-background: noise file {str(self._files[k])!r} is empty or silent")
            self._cache[(k, sr)] = w
        return self._cache[(k, sr)]

    def make_noise(self, utt, n, sr, rng, ctx, out):
        w = self._load(int(rng.integers(0, len(self._files))), sr)
        out.copy_(torch.from_numpy(_loop_to(w, n, int(rng.integers(0, len(w)))).astype(np.float32)))


# ---------------------------------------------------------------------------------------
# bursts, spikes, clipping, dropouts, packet loss
# ---------------------------------------------------------------------------------------

@CORRUPTIONS.register("audio-bursts")
class NoiseBursts(AudioCorruption):
    """Loud white-noise bursts (100-300 ms, local SNR -5 dB) covering a fraction of the utterance."""

    title = "Noise bursts"
    table = SeverityTable("burst_fraction", "of duration", (0.0, 0.05, 0.10, 0.20, 0.30, 0.45))
    local_snr_db = -5.0

    def process(self, x, sr, severity, rngs, contexts, utts):
        n = x.shape[1]
        frac = self.table[severity]
        gates = []
        for r in rngs:
            g = np.zeros(n, dtype=np.float32)
            while g.mean() < frac:
                width = min(n, int(sr * r.uniform(0.1, 0.3)))
                start = int(r.integers(0, max(1, n - width + 1)))
                g[start:start + width] = 1.0
            gates.append(g)
        noise = torch.stack([white(n, r) for r in rngs]).to(x.device) * torch.from_numpy(np.stack(gates)).to(x.device)
        ps = x.double().pow(2).mean(1, keepdim=True).clamp_min(1e-12)
        amp = torch.sqrt(ps / 10 ** (self.local_snr_db / 10.0))
        return x + (noise.double() * amp).float()


@CORRUPTIONS.register("audio-spikes")
class ImpulseSpikes(AudioCorruption):
    """Impulsive clicks (1-3 samples, amplitude 0.3-1.0 of full scale, random sign) at a rate per second."""

    title = "Clicks"
    table = SeverityTable("spikes_per_s", "1/s", (0.0, 2.0, 5.0, 10.0, 20.0, 40.0))

    def process(self, x, sr, severity, rngs, contexts, utts):
        n = x.shape[1]
        add = np.zeros((len(rngs), n), dtype=np.float32)
        for b, r in enumerate(rngs):
            count = max(1, int(round(self.table[severity] * n / sr)))
            for _ in range(count):
                pos = int(r.integers(0, n))
                width = int(r.integers(1, 4))
                add[b, pos:pos + width] = r.choice([-1.0, 1.0]) * r.uniform(0.3, 1.0)
        return x + torch.from_numpy(add).to(x.device)


@CORRUPTIONS.register("audio-clipping")
class Clipping(AudioCorruption):
    """Hard clipping at a fraction of the utterance's peak amplitude."""

    title = "Clipping"
    table = SeverityTable("clip_level", "of peak", (1.0, 0.6, 0.4, 0.25, 0.15, 0.08), harsher="decreasing")

    def process(self, x, sr, severity, rngs, contexts, utts):
        t = x.abs().amax(dim=1, keepdim=True) * self.table[severity]
        return torch.maximum(torch.minimum(x, t), -t)


@CORRUPTIONS.register("audio-dropout")
class Dropouts(AudioCorruption):
    """Silence gaps of 50-250 ms placed at random until they cover a fraction of the utterance."""

    title = "Audio dropouts"
    table = SeverityTable("drop_fraction", "of duration", (0.0, 0.05, 0.10, 0.20, 0.30, 0.45))

    def process(self, x, sr, severity, rngs, contexts, utts):
        n = x.shape[1]
        frac = self.table[severity]
        masks = []
        for r in rngs:
            keep = np.ones(n, dtype=np.float32)
            while 1.0 - keep.mean() < frac:
                width = min(n, int(sr * r.uniform(0.05, 0.25)))
                start = int(r.integers(0, max(1, n - width + 1)))
                keep[start:start + width] = 0.0
            masks.append(keep)
        return x * torch.from_numpy(np.stack(masks)).to(x.device)


@CORRUPTIONS.register("audio-packet-loss")
class PacketLoss(AudioCorruption):
    """VoIP packet loss: each 20 ms packet is lost (zeroed) with probability ``loss_rate``."""

    title = "Packet loss"
    table = SeverityTable("loss_rate", "probability", (0.0, 0.02, 0.05, 0.10, 0.20, 0.30))
    packet_ms = 20.0

    def process(self, x, sr, severity, rngs, contexts, utts):
        n = x.shape[1]
        size = max(1, int(sr * self.packet_ms / 1000))
        n_packets = -(-n // size)
        lost = np.stack([r.random(n_packets) < self.table[severity] for r in rngs])
        keep = np.repeat(~lost, size, axis=1)[:, :n].astype(np.float32)
        return x * torch.from_numpy(keep).to(x.device)


# ---------------------------------------------------------------------------------------
# reverberation, band-limiting, gain
# ---------------------------------------------------------------------------------------

def synthetic_rir(rt60: float, sr: int, rng: np.random.Generator) -> torch.Tensor:
    """Exponentially decaying Gaussian noise impulse response (60 dB decay in ``rt60`` s), direct path 1."""
    length = max(2, int(rt60 * sr))
    t = torch.arange(length, dtype=torch.float32) / sr
    rir = white(length, rng) * torch.exp(-6.9078 * t / rt60) * 0.3
    rir[0] = 1.0
    return rir


@CORRUPTIONS.register("audio-reverb")
class Reverb(AudioCorruption):
    """Reverberation: convolution (FFT) with a synthetic room impulse response; loudness kept (RMS)."""

    title = "Reverberation"
    table = SeverityTable("rt60_s", "s", (0.0, 0.2, 0.4, 0.6, 0.9, 1.3))

    def process(self, x, sr, severity, rngs, contexts, utts):
        n = x.shape[1]
        rirs = torch.stack([synthetic_rir(self.table[severity], sr, r) for r in rngs]).to(x.device)
        size = n + rirs.shape[1] - 1
        y = irfft_rows(rfft_rows(x, size) * rfft_rows(rirs, size), size)[:, :n]
        gain = x.pow(2).mean(1, keepdim=True).sqrt() / y.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-12)
        return y * gain


@CORRUPTIONS.register("audio-bandlimit")
class BandLimit(AudioCorruption):
    """Telephone-like band-limiting: 4th-order Butterworth magnitude band-pass (300 Hz to the
    cutoff), applied as a zero-phase FFT mask. Severity 2 is the classic 300-3400 Hz band."""

    title = "Telephone band"
    table = SeverityTable("cutoff_hz", "Hz", (8000.0, 4000.0, 3400.0, 2400.0, 1600.0, 1000.0), harsher="decreasing")
    low_hz = 300.0
    order = 4

    def process(self, x, sr, severity, rngs, contexts, utts):
        n = x.shape[1]
        f = torch.fft.rfftfreq(n, 1.0 / sr, device=x.device).double()
        high = self.table[severity]
        h = 1.0 / torch.sqrt(1.0 + (f / high) ** (2 * self.order))
        h = h / torch.sqrt(1.0 + (self.low_hz / f.clamp_min(1e-6)) ** (2 * self.order))
        return irfft_rows(rfft_rows(x) * h.float(), n)


@CORRUPTIONS.register("audio-gain")
class GainChanges(AudioCorruption):
    """Slow gain changes: a piecewise-linear gain through 5 random knots between 0 dB and
    ``-max_attenuation_db`` (an automatic gain control gone wrong, a speaker turning away)."""

    title = "Gain changes"
    table = SeverityTable("max_attenuation_db", "dB", (0.0, 3.0, 6.0, 10.0, 15.0, 20.0))

    def process(self, x, sr, severity, rngs, contexts, utts):
        n = x.shape[1]
        t = np.arange(n) / max(n - 1, 1)
        curves = []
        for r in rngs:
            knots = r.uniform(0.0, 1.0, size=5)
            knots[int(r.integers(0, 5))] = 1.0  # the full swing is reached somewhere
            db = -self.table[severity] * np.interp(t, np.linspace(0, 1, 5), knots)
            curves.append((10.0 ** (db / 20.0)).astype(np.float32))
        return x * torch.from_numpy(np.stack(curves)).to(x.device)
