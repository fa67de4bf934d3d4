"""Vision encoders over face crops (or whole frames), loaded from a local folder.

``vision-encoder`` runs ViT, CLIP's vision tower, DINOv2 (image encoders, one vector per
frame) or VideoMAE (a video encoder, one clip of ``num_frames`` frames) through ``AutoModel``
/ ``AutoImageProcessor`` with ``local_files_only=True``. With ``crop="face"`` each frame's
largest face (:mod:`harness.extractors.faces`) is cut out as a square and resized to the
encoder's input size; the processor then only rescales and normalises it, as it does for the
model's own inputs. With ``crop="frame"`` the processor resizes and crops whole frames its
own way. Frames without a face follow ``no_face`` (see :mod:`~harness.extractors.faces`);
with ``"zeros"`` the output gets one more column, the share of the row's frames in which a
face was found (1/0 per frame), so a model can tell a missing face from a dark one.

Per clip the output is ``[F, D]`` (``pooling="frames"``: one row per frame; VideoMAE: one row
per tubelet of ``tubelet_size`` sampled frames) or ``[1, D]`` (``pooling="mean"``: the mean over
frames with a face, or the clip vector of VideoMAE). :meth:`VisionEncoder.item_stats` counts,
per clip of the last call, its frames, the frames without a face and whether no frame had one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
import torch

from harness.data.types import RawMedia
from harness.extractors.faces import NO_FACE_RULES, FaceDetector, fill_missing, square_crop
from harness.extractors.local_model import LocalEncoder, Pooling, Precision
from harness.options import Range
from harness.registry import EXTRACTORS
from harness.runtime import machine_independent_threads

VISION_MODEL_TYPES = {"vit": "ViT", "clip": "CLIP (its vision tower)", "clip_vision_model": "CLIP vision tower",
                      "dinov2": "DINOv2", "videomae": "VideoMAE"}
CROPS = ("face", "frame")
TOKENS = ("auto", "cls", "mean")


def processor_input_size(processor: Any) -> tuple[int, int]:
    """``(height, width)`` of the images an image processor hands its model: the centre crop's
    size when it crops, else its resize target (a square for a shortest-edge resize)."""
    size = processor.crop_size if getattr(processor, "do_center_crop", False) else processor.size
    if size.get("height") and size.get("width"):
        return int(size["height"]), int(size["width"])
    edge = size.get("shortest_edge")
    if not edge:
        raise ValueError(f"vision-encoder: cannot tell the input size from the image processor's size {size}")
    return int(edge), int(edge)


@EXTRACTORS.register("vision-encoder", modality="video")
class VisionEncoder(LocalEncoder):
    """Per-frame (or per-clip) hidden states of a local vision encoder over face crops.

    ``token``: which tokens make a frame's vector: ``"cls"`` (the class token), ``"mean"`` (the
    mean of the other tokens) or ``"auto"`` (class token for image encoders, mean for VideoMAE,
    which has none). ``layer`` / ``layers`` as for ``audio-encoder``. ``frame_batch``: frames
    per forward pass of an image encoder; a frame's features then match one-frame passes to
    float rounding (``tests/test_extractors_vision.py`` checks 1e-5), not bit for bit.
    """

    modality = "video"
    name = "vision-encoder"
    MODEL_TYPES = VISION_MODEL_TYPES
    WHAT = "a vision encoder"

    def __init__(self, path: str, crop: Literal["face", "frame"] = "face", no_face: Literal["last", "zeros"] = "last",
                 layer: int | None = None, layers: list[int] | None = None, pooling: Pooling = "frames",
                 token: Literal["auto", "cls", "mean"] = "auto", margin: Annotated[float, Range(0, 1)] = 0.2,
                 min_face: Annotated[int, Range(24, None)] = 24, frame_batch: Annotated[int, Range(1, None)] = 16,
                 device: str = "auto", precision: Precision = "auto") -> None:
        if crop not in CROPS:
            raise ValueError(f"vision-encoder: crop must be one of {', '.join(CROPS)}, got {crop!r}")
        if no_face not in NO_FACE_RULES:
            raise ValueError(f"vision-encoder: no_face must be one of {', '.join(NO_FACE_RULES)}, got {no_face!r}")
        if token not in TOKENS:
            raise ValueError(f"vision-encoder: token must be one of {', '.join(TOKENS)}, got {token!r}")
        for option, value, low, high in (("margin", margin, 0, 1), ("min_face", min_face, 24, None),
                                         ("frame_batch", frame_batch, 1, None)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or (
                    high is not None and value > high) or (option != "margin" and not isinstance(value, int)):
                raise ValueError(f"vision-encoder: {option} must be {'a number' if option == 'margin' else 'an int'} "
                                 f"in [{low}, {'inf' if high is None else high}], got {value!r}")
        self._setup(path, layer, layers, pooling, device, precision)
        from transformers import AutoImageProcessor

        self._video = self.model_type == "videomae"
        if self._video and token == "cls":
            raise ValueError("vision-encoder: VideoMAE has no class token; use token='mean' (or 'auto')")
        self.crop, self.no_face, self.token = crop, no_face, token
        self.margin, self.min_face, self.frame_batch = float(margin), int(min_face), int(frame_batch)
        self._processor = AutoImageProcessor.from_pretrained(self.path, local_files_only=True, backend="pil")
        self.input_size = processor_input_size(self._processor)
        self._vision = getattr(self._model, "vision_model", self._model)  # CLIP: its vision tower
        self._detector = FaceDetector(min_size=self.min_face) if crop == "face" else None
        self._stats: list[dict[str, int]] = []

    def _n_hidden_states(self) -> int:
        config = getattr(self._model.config, "vision_config", self._model.config)
        return int(config.num_hidden_layers) + 1

    @property
    def _hidden_size(self) -> int:
        return int(getattr(self._model.config, "vision_config", self._model.config).hidden_size)

    @property
    def _masked(self) -> bool:
        return self.crop == "face" and self.no_face == "zeros"

    @property
    def dim(self) -> int:
        return self._hidden_size + int(self._masked)

    def item_stats(self) -> list[dict[str, int]]:
        return [dict(s) for s in self._stats]

    def face_crops(self, frames: np.ndarray) -> tuple[list[np.ndarray | None], np.ndarray]:
        """``(crops, found)`` of an RGB clip ``[F, H, W, 3]``: per frame a uint8 crop of the encoder's
        input size (None where the no-face rule leaves no box), and whether a face was found in it."""
        if self._detector is None:
            raise ValueError("vision-encoder: face_crops needs crop='face'")
        found = [self._detector.detect(f) for f in frames]
        boxes = fill_missing(found, self.no_face)
        resample = int(self._processor.resample)
        crops = [None if b is None else square_crop(f, b, self.margin, self.input_size, resample)
                 for f, b in zip(frames, boxes)]
        return crops, np.array([b is not None for b in found])

    @torch.inference_mode()
    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        clips = []
        for i, m in enumerate(media):
            if m.frames is None or len(m.frames) == 0:
                raise ValueError(f"vision-encoder: item {i} has no frames")
            frames = np.asarray(m.frames)
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise ValueError(f"vision-encoder: item {i} frames are {frames.dtype} {frames.shape}, expected uint8 "
                                 f"[F, H, W, 3]")
            clips.append(frames)
        out, self._stats = [], []
        with machine_independent_threads(self._device):
            for frames in clips:
                if self.crop == "face":
                    images, found = self.face_crops(frames)
                    self._stats.append({"frames": len(frames), "frames_without_face": int((~found).sum()),
                                        "clips_without_face": int(not found.any())})
                else:
                    images, found = list(frames), np.ones(len(frames), dtype=bool)
                    self._stats.append({"frames": len(frames)})
                out.append(self._encode_clip(images, found) if self._video else self._encode_frames(images, found))
        return out

    def _pixels(self, images: list[np.ndarray]) -> torch.Tensor:
        crops = {"do_resize": False, "do_center_crop": False} if self.crop == "face" else {}
        return self._processor(images, return_tensors="pt", **crops)["pixel_values"].to(self._device)

    def _vector(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[B, tokens, D]`` -> ``[B, D]`` by the ``token`` rule (VideoMAE is handled in _encode_clip)."""
        return hidden[:, 1:].mean(dim=1) if self.token == "mean" else hidden[:, 0]

    def _encode_frames(self, images: list[np.ndarray | None], found: np.ndarray) -> torch.Tensor:
        rows = torch.zeros(len(images), self._hidden_size)
        present = [i for i, im in enumerate(images) if im is not None]
        for start in range(0, len(present), self.frame_batch):
            idx = present[start:start + self.frame_batch]
            with self._autocast():
                res = self._vision(pixel_values=self._pixels([images[i] for i in idx]), output_hidden_states=True)
            rows[idx] = self._vector(self._hidden(res)).cpu()
        coverage = torch.tensor(found, dtype=torch.float32)
        if self.pooling == "mean":
            rows = rows[present].mean(dim=0, keepdim=True) if present else rows[:1] * 0
            coverage = coverage.mean().reshape(1)
        return self._with_mask(rows, coverage)

    def _encode_clip(self, images: list[np.ndarray | None], found: np.ndarray) -> torch.Tensor:
        config = self._model.config
        n, tubelet = int(config.num_frames), int(config.tubelet_size)
        pick = np.linspace(0, len(images) - 1, n).round().astype(int)  # n frames spread over the clip
        coverage = torch.tensor(found[pick], dtype=torch.float32).reshape(n // tubelet, tubelet).mean(dim=1)
        if all(images[i] is None for i in pick):  # no face anywhere in the sampled frames
            rows = torch.zeros(n // tubelet, self._hidden_size)
        else:
            black = np.zeros((*self.input_size, 3), dtype=np.uint8)
            sampled = [images[i] if images[i] is not None else black for i in pick]
            with self._autocast():
                res = self._model(pixel_values=self._pixels(sampled), output_hidden_states=True)
            tokens = self._hidden(res)[0]  # [n / tubelet * patches, D], time-major
            rows = tokens.reshape(n // tubelet, -1, tokens.shape[-1]).mean(dim=1).cpu()
        if self.pooling == "mean":
            rows, coverage = rows.mean(dim=0, keepdim=True), coverage.mean().reshape(1)
        return self._with_mask(rows, coverage)

    def _with_mask(self, rows: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
        rows = rows.float()
        return (torch.cat([rows, coverage[:, None]], dim=1) if self._masked else rows).contiguous()
