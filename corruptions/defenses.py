"""Defences: denoise raw media before feature extraction, then re-extract the features.

Same call shape as a corruption without severity: ``defense(dialogues) -> dialogues``, and
the same extractor binding (``bind(dataset)`` or ``extractor=``). Defences are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import torch

from harness.corruption import NO_EXTRACTOR, RawCorruption
from harness.data.types import Dialogue, Utterance
from harness.options import PositiveInt, UnitInterval
from harness.registry import DEFENSES
from harness.runtime import machine_independent_threads


class RawDefense(RawCorruption):
    """Base: :meth:`clean` maps the raw field of every utterance; features are re-extracted."""

    def clean(self, utts: Sequence[Utterance]) -> list[Any]:
        raise NotImplementedError

    def __call__(self, dialogues: Sequence[Dialogue]) -> list[Dialogue]:  # type: ignore[override]
        extractor = self.make_extractor()
        utts = [u for d in dialogues for u in d.utterances]
        self.check_raw(utts)
        values = self.clean(utts)
        raws = [replace(u.raw, **{self.raw_field: v}) for u, v in zip(utts, values)]
        feats = extractor.extract(raws) if extractor is not None else None
        new = [replace(u, raw=r) if feats is None else replace(u, raw=r).with_features({self.modality: feats[i]})
               for i, (u, r) in enumerate(zip(utts, raws))]
        out, k = [], 0
        for d in dialogues:
            out.append(Dialogue(d.dialogue_id, new[k:k + len(d)]))
            k += len(d)
        return out


@DEFENSES.register("denoise-spectral")
class SpectralGate(RawDefense):
    """Spectral-gating denoiser (noisereduce) on the waveform before feature extraction.

    ``stationary=True`` estimates one noise threshold per frequency over the utterance;
    ``False`` (default) tracks a time-varying noise floor. On CUDA ``noisereduce.torchgate.TorchGate``
    runs on each waveform; on the CPU ``noisereduce.reduce_noise`` does (``backend="torchgate"``
    forces the torch gate on the CPU too, on one thread). ``prop_decrease`` in [0, 1] is how much of the noise is removed.
    """

    raw_field = "waveform"

    def __init__(self, modality: str = "audio", stationary: bool = False, prop_decrease: UnitInterval = 1.0,
                 backend: Literal["auto", "torchgate", "reduce_noise"] = "auto",
                 extractor: dict[str, Any] | str | None = None, device: str = "auto") -> None:
        super().__init__(modality, extractor=extractor, device=device)
        self.stationary = bool(stationary)
        self.prop_decrease = float(prop_decrease)
        self.backend = backend

    def clean(self, utts):
        device = self.torch_device()
        use_gate = self.backend == "torchgate" or (self.backend == "auto" and device.type == "cuda")
        if not use_gate:
            import noisereduce as nr

            return [nr.reduce_noise(y=np.asarray(u.raw.waveform, dtype=np.float32), sr=int(u.raw.sample_rate),
                                    stationary=self.stationary, prop_decrease=self.prop_decrease).astype(np.float32)
                    for u in utts]
        from noisereduce.torchgate import TorchGate

        out: list[Any] = []
        gates: dict[tuple[int, int], Any] = {}
        # one waveform at a time and on one CPU thread, like the corruptions: an utterance's
        # cleaned waveform does not depend on what it is cleaned with or on the thread count
        with machine_independent_threads(device), torch.no_grad():
            for u in utts:
                n, sr = len(u.raw.waveform), int(u.raw.sample_rate)
                n_fft = min(1024, 1 << (max(n, 2) - 1).bit_length())
                if (sr, n_fft) not in gates:
                    gates[(sr, n_fft)] = TorchGate(sr=sr, nonstationary=not self.stationary,
                                                   prop_decrease=self.prop_decrease, n_fft=n_fft).to(device)
                x = torch.from_numpy(np.asarray(u.raw.waveform, dtype=np.float32)[None].copy()).to(device)
                # TorchGate's STFT drops the incomplete last hop: pad, gate, crop back to n samples
                y = gates[(sr, n_fft)](torch.nn.functional.pad(x, (0, n_fft))).float().cpu().numpy()
                out.append(np.ascontiguousarray(y[0, :n]))
        return out


@DEFENSES.register("video-temporal-median")
class TemporalMedian(RawDefense):
    """Per-pixel median over a sliding window of ``window`` frames (odd; edges use a shorter
    window). Removes single-frame glitches, flicker and per-frame sensor noise."""

    raw_field = "frames"

    def __init__(self, modality: str = "video", window: PositiveInt = 3, extractor: dict[str, Any] | str | None = None,
                 device: str = "auto") -> None:
        super().__init__(modality, extractor=extractor, device=device)
        if int(window) % 2 == 0:
            raise ValueError(f"video-temporal-median: window must be odd (a centred median), got {window!r}")
        self.window = int(window)

    def clean(self, utts):
        device = self.torch_device()
        out = []
        half = self.window // 2
        for u in utts:
            f = torch.from_numpy(np.ascontiguousarray(u.raw.frames)).to(device)
            n = f.shape[0]
            padded = torch.cat([f[:1].expand(half, *f.shape[1:]), f, f[-1:].expand(half, *f.shape[1:])]) if half else f
            windows = padded.unfold(0, self.window, 1)  # [F, H, W, 3, window]
            out.append(windows.median(dim=-1).values[:n].cpu().numpy().astype(np.uint8))
        return out


__all__ = ["RawDefense", "SpectralGate", "TemporalMedian", "NO_EXTRACTOR"]
