"""Face detection and cropping per video frame.

The detector is the LBP frontal-face cascade that scikit-image ships inside its wheel
(``skimage.data.lbp_frontal_face_cascade_filename()``, OpenCV's ``lbpcascade_frontalface``
trained model), run by ``skimage.feature.Cascade``: nothing is downloaded, and scikit-image
(BSD-3-Clause) installs beside torch 2.13 and the project's OpenCV wheel without touching
either. Why this detector and not another is in docs/EXTRACTORS.md.

A frame gets at most one face, the largest detection. Frames without a face follow a rule:

* ``"last"``: crop at the nearest earlier face's box (frames before the first face use the
  first face's box); a clip without any face has no box at all;
* ``"zeros"``: no box: the encoder gives that frame zeros, and a mask says which frames had a face.

Crops are squares around the box (widened by a
margin, kept inside the frame) resized to the encoder's input size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NO_FACE_RULES = ("last", "zeros")


@dataclass(frozen=True)
class Box:
    """A face box in pixels: top row, left column, height and width."""

    top: int
    left: int
    height: int
    width: int


class FaceDetector:
    """The largest frontal face of a frame, by scikit-image's LBP cascade.

    ``min_size``: the smallest face side searched, in pixels (the cascade's window is 24 px,
    so smaller faces are never found: decode frames large enough). ``scale_factor``: the
    window grows by this factor per scale; ``min_neighbours``: overlapping detections needed
    to accept a face (fewer false faces at higher values).
    """

    def __init__(self, min_size: int = 24, scale_factor: float = 1.2, min_neighbours: int = 4) -> None:
        from skimage.data import lbp_frontal_face_cascade_filename
        from skimage.feature import Cascade

        self.min_size = int(min_size)
        self.scale_factor = float(scale_factor)
        self.min_neighbours = int(min_neighbours)
        self._cascade = Cascade(lbp_frontal_face_cascade_filename())

    def detect(self, frame: np.ndarray) -> Box | None:
        """The largest face in an RGB ``[H, W, 3]`` frame (uint8 or float in [0, 1]), or None."""
        from skimage.color import rgb2gray

        h, w = frame.shape[:2]
        if min(h, w) < self.min_size:
            return None
        found = self._cascade.detect_multi_scale(
            img=rgb2gray(frame), scale_factor=self.scale_factor, step_ratio=1, min_size=(self.min_size, self.min_size),
            max_size=(h, w), min_neighbor_number=self.min_neighbours)
        if not found:
            return None
        # largest area first; ties broken by position so the choice never depends on list order
        best = max(found, key=lambda d: (d["width"] * d["height"], -d["r"], -d["c"]))
        return Box(int(best["r"]), int(best["c"]), int(best["height"]), int(best["width"]))


def fill_missing(boxes: Sequence[Box | None], rule: str) -> list[Box | None]:
    """Apply a no-face rule to per-frame detections (see the module docstring)."""
    if rule not in NO_FACE_RULES:
        raise ValueError(f"no_face must be one of {', '.join(NO_FACE_RULES)}, got {rule!r}")
    if rule == "zeros":
        return list(boxes)
    first = next((b for b in boxes if b is not None), None)
    out, last = [], first
    for b in boxes:
        last = b if b is not None else last
        out.append(last)
    return out


def square_crop(frame: np.ndarray, box: Box, margin: float, size: tuple[int, int], resample: int) -> np.ndarray:
    """The square around ``box`` widened by ``margin`` times its side on every side, moved (then
    clipped) to lie inside the frame, resized to ``size = (height, width)`` with PIL filter
    ``resample``: uint8 ``[height, width, 3]``."""
    from PIL import Image

    h, w = frame.shape[:2]
    side = min(int(round(max(box.height, box.width) * (1 + 2 * margin))), h, w)
    cy, cx = box.top + box.height / 2, box.left + box.width / 2
    top = int(min(max(round(cy - side / 2), 0), h - side))
    left = int(min(max(round(cx - side / 2), 0), w - side))
    patch = np.ascontiguousarray(frame[top:top + side, left:left + side])
    image = Image.fromarray(patch).resize((size[1], size[0]), resample=Image.Resampling(int(resample)))
    return np.asarray(image, dtype=np.uint8)
