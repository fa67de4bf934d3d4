"""Raw-video corruptions of ``utt.raw.frames`` (uint8 ``[F, H, W, 3]``).

Appearance corruptions use albumentations 2.0.8: one transform, with its parameters pinned
to the severity's value, is sampled once per clip and applied identically to every frame by
passing the clip as ``images=`` to ``Compose([...], seed=...)``; the seed comes from the
utterance's generator. Flicker-like corruptions that are meant to change per frame set
``per_frame = True`` (one call per frame, seeds drawn from the same generator).
Temporal faults (dropped, frozen and glitched frames) are done directly in numpy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

# albumentations looks itself up on PyPI when imported (a network call from every worker, and a
# warning when offline); its documented switch turns that off. Set before its first import,
# which happens lazily in this module; an explicit value in the environment is kept.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from harness.corruption import RawCorruption, SeverityTable, UttContext
from harness.data.types import Utterance
from harness.registry import CORRUPTIONS


class VideoCorruption(RawCorruption):
    raw_field = "frames"

    def __init__(self, modality: str = "video", extractor: dict[str, Any] | str | None = None,
                 device: str = "auto") -> None:
        super().__init__(modality, extractor=extractor, device=device)

    def corrupt_clip(self, frames: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def corrupt_raw(self, utts: Sequence[Utterance], severity: int, rngs: Sequence[np.random.Generator],
                    contexts: Sequence[UttContext]) -> list[Any]:
        out = []
        for u, r in zip(utts, rngs):
            f = np.asarray(u.raw.frames)
            if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
                raise ValueError(f"{self.name}: utterance {u.uid!r} frames have shape {f.shape} and dtype {f.dtype}, "
                                 f"expected uint8 [F, H, W, 3]")
            out.append(np.ascontiguousarray(self.corrupt_clip(f, severity, r)))
        return out


class AlbumentationsCorruption(VideoCorruption):
    """A clip corruption built from one albumentations transform per severity."""

    per_frame = False

    def transform(self, severity: int, frames: np.ndarray) -> Any:
        raise NotImplementedError

    def corrupt_clip(self, frames, severity, rng):
        import albumentations as A

        if self.per_frame:
            return np.stack([A.Compose([self.transform(severity, frames)], p=1.0, seed=int(rng.integers(0, 2**31 - 1)))(
                image=f)["image"] for f in frames])
        compose = A.Compose([self.transform(severity, frames)], p=1.0, seed=int(rng.integers(0, 2**31 - 1)))
        return np.asarray(compose(images=frames)["images"], dtype=np.uint8)


def _register(name: str, title: str, table: SeverityTable, doc: str, make, per_frame: bool = False):
    cls = type(name.replace("-", "_"), (AlbumentationsCorruption,), {
        "__doc__": doc, "title": title, "table": table, "per_frame": per_frame,
        "transform": lambda self, s, frames: make(self.table[s], frames),
        "__module__": __name__,
    })
    CORRUPTIONS.register(name)(cls)
    globals()[cls.__name__] = cls
    return cls


def _odd(k: float) -> int:
    k = int(round(k))
    return k if k % 2 else k + 1


def _A():
    import albumentations as A

    return A


_register("video-gaussian-blur", "Blur", SeverityTable("sigma", "px", (0.0, 0.6, 1.0, 1.5, 2.2, 3.0)),
          "Gaussian blur of every frame (sigma in pixels).",
          lambda v, f: _A().GaussianBlur(blur_limit=(_odd(6 * v + 1),) * 2, sigma_limit=(v, v), p=1.0))
_register("video-motion-blur", "Motion blur", SeverityTable("kernel", "px", (0.0, 3.0, 5.0, 9.0, 15.0, 21.0)),
          "Motion blur along one random direction per clip (kernel length in pixels).",
          lambda v, f: _A().MotionBlur(blur_limit=(int(v), int(v)), allow_shifted=False, p=1.0))
_register("video-noise", "Sensor noise", SeverityTable("noise_std", "of range", (0.0, 0.04, 0.08, 0.12, 0.18, 0.26)),
          "Sensor noise: additive Gaussian noise (std as a fraction of 255), new noise every frame.",
          lambda v, f: _A().GaussNoise(std_range=(v, v), per_channel=True, p=1.0), per_frame=True)
_register("video-jpeg", "JPEG compression", SeverityTable("jpeg_quality", "", (100.0, 60.0, 35.0, 20.0, 10.0, 5.0), harsher="decreasing"),
          "JPEG compression at a quality.",
          lambda v, f: _A().ImageCompression(compression_type="jpeg", quality_range=(int(v), int(v)), p=1.0))
_register("video-low-light", "Low light", SeverityTable("brightness_shift", "of range", (0.0, -0.15, -0.3, -0.45, -0.6, -0.75),
                                           harsher="decreasing"),
          "Low light: brightness lowered by a fraction of the range (with contrast lowered alike).",
          lambda v, f: _A().RandomBrightnessContrast(brightness_limit=(v, v), contrast_limit=(v / 2, v / 2), p=1.0))
_register("video-contrast", "Low contrast", SeverityTable("contrast_shift", "", (0.0, -0.2, -0.4, -0.55, -0.7, -0.85),
                                          harsher="decreasing"),
          "Contrast loss towards the mean grey level.",
          lambda v, f: _A().RandomBrightnessContrast(brightness_limit=(0.0, 0.0), contrast_limit=(v, v), p=1.0))
_register("video-occlusion", "Occlusion", SeverityTable("occluded_side", "of frame side", (0.0, 0.15, 0.25, 0.35, 0.45, 0.6)),
          "Occlusion: one black square (side a fraction of the frame) at the same place in every frame.",
          lambda v, f: _A().CoarseDropout(num_holes_range=(1, 1), hole_height_range=(v, v), hole_width_range=(v, v),
                                          fill=0, p=1.0))
_register("video-downscale", "Low resolution", SeverityTable("scale", "", (1.0, 0.75, 0.5, 0.35, 0.25, 0.15), harsher="decreasing"),
          "Down-scaling (area) then up-scaling (bilinear), i.e. lost resolution.",
          lambda v, f: _A().Downscale(scale_range=(v, v), interpolation_pair={"downscale": 3, "upscale": 1}, p=1.0))


@CORRUPTIONS.register("video-fog")
class Fog(VideoCorruption):
    """Fog: every frame blended towards a light grey haze whose density (a smooth random map,
    the same for the whole clip) averages ``fog_density``. (albumentations' RandomFog is not
    monotone in its coefficient on small frames, so the haze is made here.)"""

    title = "Fog"
    table = SeverityTable("fog_density", "", (0.0, 0.15, 0.3, 0.45, 0.6, 0.75))

    def corrupt_clip(self, frames, severity, rng):
        import cv2

        _, h, w, _ = frames.shape
        coarse = rng.uniform(0.6, 1.4, size=(4, 4)).astype(np.float32)
        density = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        t = np.clip(density * self.table[severity], 0.0, 1.0)[None, :, :, None]
        return np.clip(frames.astype(np.float32) * (1 - t) + 215.0 * t + 0.5, 0, 255).astype(np.uint8)


@CORRUPTIONS.register("video-frame-drop")
class FrameDrop(VideoCorruption):
    """Dropped frames: each frame is lost with probability ``drop_rate`` and the previous kept
    frame is shown instead (a lost first frame is black). The frame count is kept."""

    title = "Dropped video frames"
    table = SeverityTable("drop_rate", "probability", (0.0, 0.1, 0.2, 0.35, 0.5, 0.7))

    def corrupt_clip(self, frames, severity, rng):
        lost = rng.random(len(frames)) < self.table[severity]
        src = np.maximum.accumulate(np.where(~lost, np.arange(len(frames)), -1))
        out = frames[np.maximum(src, 0)].copy()
        out[src < 0] = 0
        return out


@CORRUPTIONS.register("video-freeze")
class FrameFreeze(VideoCorruption):
    """Frozen video: from a random start, a run of frames repeats the start frame."""

    title = "Frozen video"
    table = SeverityTable("frozen_fraction", "of frames", (0.0, 0.15, 0.3, 0.45, 0.6, 0.8))

    def corrupt_clip(self, frames, severity, rng):
        n = len(frames)
        k = max(1, int(round(self.table[severity] * n)))
        start = int(rng.integers(0, max(1, n - k)))
        out = frames.copy()
        out[start + 1:start + 1 + k] = frames[start]
        return out


@CORRUPTIONS.register("video-glitch")
class GlitchBurst(VideoCorruption):
    """Glitch bursts: each frame is hit with probability ``glitch_rate``; a hit frame gets
    horizontal bands shifted sideways and one band replaced by random colour blocks."""

    title = "Glitches"
    table = SeverityTable("glitch_rate", "probability", (0.0, 0.1, 0.2, 0.35, 0.5, 0.7))

    def corrupt_clip(self, frames, severity, rng):
        out = frames.copy()
        n, h, w, _ = frames.shape
        hit = rng.random(n) < self.table[severity]
        for f in np.flatnonzero(hit):
            for _ in range(int(rng.integers(2, 5))):
                top = int(rng.integers(0, h))
                height = int(rng.integers(1, max(2, h // 4)))
                out[f, top:top + height] = np.roll(out[f, top:top + height], int(rng.integers(-w // 3, w // 3 + 1)), axis=1)
            top = int(rng.integers(0, h))
            out[f, top:top + max(1, h // 8)] = rng.integers(0, 256, size=(1, 1, 3), dtype=np.uint8)
        return out
