"""vision-encoder and the face path: a clip made from a real photographed face (scikit-image's
astronaut) and frames without one, through tiny random ViT / CLIP / DINOv2 / VideoMAE models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_datasets import raw_mmsa_folder
from skimage import data
from skimage.transform import resize

from harness import DATASETS, EXTRACTORS
from harness.data.types import RawMedia
from harness.extractors.faces import Box, FaceDetector, fill_missing
from harness.extractors.random_models import VISION_TYPES, save_audio_encoder, save_vision_encoder

SIZE = 128


def face_frame(shift: int = 0) -> np.ndarray:
    """The astronaut photograph at 128 px, moved ``shift`` pixels right (her face is about 22 px wide)."""
    img = (resize(data.astronaut(), (SIZE, SIZE), anti_aliasing=True) * 255).round().astype(np.uint8)
    return np.roll(img, shift, axis=1)


def no_face_frames() -> list[np.ndarray]:
    grey = np.full((SIZE, SIZE, 3), 110, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    return [grey, noise]


# frames 0 and 4: no face; 1-3 and 5: the face, moving
CLIP = np.stack([no_face_frames()[0], face_frame(0), face_frame(4), face_frame(8), no_face_frames()[1], face_frame(12)])
HAS_FACE = [False, True, True, True, False, True]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vision-encoders")
    return {t: save_vision_encoder(root / t, t, image_size=48 if t == "vit" else 32) for t in VISION_TYPES}


def test_the_detector_finds_the_photographed_face_and_nothing_in_the_other_frames():
    detector = FaceDetector()
    boxes = [detector.detect(f) for f in CLIP]
    assert [b is not None for b in boxes] == HAS_FACE
    first = boxes[1]
    assert 15 <= first.width <= 40 and first.height == first.width  # a face, not the whole picture
    # the face's centre in the 512 px photograph, (117, 221), scaled to 128 px: inside the box
    assert first.top < 117 / 4 < first.top + first.height and first.left < 221 / 4 < first.left + first.width
    assert boxes[3].left - boxes[1].left in range(6, 11)  # it follows the face as it moves


def test_no_face_rule_last_keeps_the_nearest_earlier_box():
    a, b = Box(1, 2, 3, 3), Box(5, 6, 3, 3)
    assert fill_missing([None, a, None, b, None], "last") == [a, a, a, b, b]  # leading frames take the first box
    assert fill_missing([None, a, None], "zeros") == [None, a, None]
    assert fill_missing([None, None], "last") == [None, None]
    with pytest.raises(ValueError, match="no_face must be one of last, zeros, got 'skip'"):
        fill_missing([a], "skip")


@pytest.mark.parametrize("model_type", VISION_TYPES)
def test_crops_have_the_encoders_input_size_and_no_face_frames_are_counted(encoders, model_type):
    last = EXTRACTORS.create("vision-encoder", path=str(encoders[model_type]), device="cpu")
    expected_size = (48, 48) if model_type == "vit" else (32, 32)
    assert last.input_size == expected_size
    crops, found = last.face_crops(CLIP)
    assert found.tolist() == HAS_FACE
    assert all(c is not None and c.shape == (*expected_size, 3) and c.dtype == np.uint8 for c in crops)
    np.testing.assert_array_equal(crops[4], last.face_crops(CLIP[[3, 4]])[0][1])  # frame 4 cut at frame 3's box
    feats = last.extract([RawMedia(frames=CLIP, fps=10.0), RawMedia(frames=CLIP[[0, 4]], fps=10.0)])
    assert last.item_stats() == [{"frames": 6, "frames_without_face": 2, "clips_without_face": 0},
                                 {"frames": 2, "frames_without_face": 2, "clips_without_face": 1}]
    rows = 6 if model_type != "videomae" else 2  # VideoMAE: one row per tubelet of its 4 sampled frames
    assert feats[0].shape == (rows, 16) and last.dim == 16
    assert feats[0].abs().sum(1).gt(0).all()  # "last": every row is a face
    assert feats[1].abs().sum() == 0  # a clip without any face gives zeros

    zeros = EXTRACTORS.create("vision-encoder", path=str(encoders[model_type]), device="cpu", no_face="zeros")
    masked = zeros.extract([RawMedia(frames=CLIP, fps=10.0)])[0]
    assert zeros.dim == 17 and masked.shape == (rows, 17)
    if model_type != "videomae":
        assert masked[:, -1].tolist() == [float(f) for f in HAS_FACE]  # the mask column
        assert masked[~torch.tensor(HAS_FACE), :-1].abs().sum() == 0  # no face: zeros
        assert torch.allclose(masked[torch.tensor(HAS_FACE), :-1], feats[0][torch.tensor(HAS_FACE)], atol=1e-5)
    else:  # sampled frames 0, 2, 3, 5 -> tubelets (0, 2) and (3, 5): a face in 1 of 2, then 2 of 2
        assert masked[:, -1].tolist() == [0.5, 1.0]
    assert zeros.item_stats()[0]["frames_without_face"] == 2


def test_mean_pooling_and_whole_frames(encoders):
    folder = str(encoders["dinov2"])
    frames = EXTRACTORS.create("vision-encoder", path=folder, device="cpu", no_face="zeros").extract(
        [RawMedia(frames=CLIP, fps=10.0)])[0]
    pooled = EXTRACTORS.create("vision-encoder", path=folder, device="cpu", no_face="zeros", pooling="mean").extract(
        [RawMedia(frames=CLIP, fps=10.0)])[0]
    faces = torch.tensor(HAS_FACE)
    assert pooled.shape == (1, 17)
    assert torch.allclose(pooled[0, :-1], frames[faces, :-1].mean(0), atol=1e-5)  # the mean over frames with a face
    assert pooled[0, -1].item() == pytest.approx(4 / 6)
    whole = EXTRACTORS.create("vision-encoder", path=folder, device="cpu", crop="frame")
    out = whole.extract([RawMedia(frames=CLIP, fps=10.0)])[0]
    assert out.shape == (6, 16) and whole.item_stats() == [{"frames": 6}]
    with pytest.raises(ValueError, match="face_crops needs crop='face'"):
        whole.face_crops(CLIP)


def test_layer_selects_the_hidden_state_and_frame_batches_match_single_frames(encoders):
    from transformers import AutoImageProcessor, AutoModel

    folder = encoders["clip"]
    one = EXTRACTORS.create("vision-encoder", path=str(folder), device="cpu", layer=1, frame_batch=1)
    crops, _ = one.face_crops(CLIP)
    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True, backend="pil")
    vision = AutoModel.from_pretrained(folder, local_files_only=True).eval().vision_model
    with torch.no_grad():
        pixels = processor(crops, return_tensors="pt", do_resize=False, do_center_crop=False)["pixel_values"]
        ref = vision(pixel_values=pixels, output_hidden_states=True).hidden_states[1][:, 0]
    singles = one.extract([RawMedia(frames=CLIP, fps=10.0)])[0]
    assert torch.allclose(singles, ref, atol=1e-5)
    batched = EXTRACTORS.create("vision-encoder", path=str(folder), device="cpu", layer=1, frame_batch=4).extract(
        [RawMedia(frames=CLIP, fps=10.0)])[0]
    # the stated tolerance of frame batching (VisionEncoder's docstring)
    assert torch.allclose(batched, singles, atol=1e-5, rtol=0)
    last = EXTRACTORS.create("vision-encoder", path=str(folder), device="cpu", layer=-1).extract(
        [RawMedia(frames=CLIP, fps=10.0)])[0]
    assert not torch.allclose(last, singles, atol=1e-3)


def test_bad_input_is_one_clear_error(encoders, tmp_path):
    def error(**options) -> str:
        with pytest.raises(ValueError) as err:
            EXTRACTORS.create("vision-encoder", device="cpu", **options)
        assert "\n" not in str(err.value)
        return str(err.value)

    audio = save_audio_encoder(tmp_path / "w2v", "wav2vec2")
    assert "holds a 'wav2vec2' model, which is not a vision encoder" in error(path=str(audio))
    assert "never downloaded" in error(path="google/vit-base-patch16-224")
    assert "VideoMAE has no class token" in error(path=str(encoders["videomae"]), token="cls")
    assert "option 'no_face' does not allow 'blur': must be one of 'last', 'zeros'" in error(
        path=str(encoders["vit"]), no_face="blur")
    assert "margin must be a number in [0, 1], got 2" in error(path=str(encoders["vit"]), margin=2)
    assert "min_face must be an int in [24, inf], got 8" in error(path=str(encoders["vit"]), min_face=8)
    ex = EXTRACTORS.create("vision-encoder", path=str(encoders["vit"]), device="cpu")
    with pytest.raises(ValueError, match=r"item 0 frames are float32 \(2, 8, 8, 3\), expected uint8"):
        ex.extract([RawMedia(frames=np.zeros((2, 8, 8, 3), np.float32))])


def write_clip(path: Path, frames: np.ndarray, fps: int = 10) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=fps)
        v.width = v.height = frames.shape[1]
        v.pix_fmt, v.bit_rate = "yuv420p", 2_000_000
        for f in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)


def test_frames_without_a_face_are_counted_in_the_dataset_card(encoders, tmp_path):
    root = tmp_path / "MOSI"
    raw_mmsa_folder(root)
    clips = sorted((root / "Raw").rglob("*.mp4"))
    for i, clip in enumerate(clips):  # clip 0 without any face; the others as CLIP
        write_clip(clip, np.stack(no_face_frames() * 3) if i == 0 else CLIP)
    options = {"path": str(encoders["vit"]), "device": "cpu", "no_face": "zeros"}

    def load():  # noqa: ANN202
        return DATASETS.create("raw-mmsa", path=str(root), audio=None, video="vision-encoder", video_options=options,
                               frame_size=SIZE, cache_dir=str(tmp_path / "cache"))

    ds = load()
    expected = {"frames": 6 + 5 * 6, "frames_without_face": 6 + 5 * 2, "clips_without_face": 1}
    assert ds.card["extraction_stats"] == {"video": expected}
    assert ds.spec.dims["video"] == 17
    again = load()  # every feature from the cache: the counts come with them
    assert again.card["feature_cache"]["hits"] == 12 and again.card["extraction_stats"] == {"video": expected}


def test_options_are_declared_for_describe_and_config_checks():
    from typing import Annotated, get_type_hints

    from harness.extractors.vision_encoder import VisionEncoder
    from harness.options import Range, option_specs

    specs = {s.name: s for s in option_specs(EXTRACTORS.get("vision-encoder"))}
    assert specs["crop"].allowed == ("face", "frame") and specs["no_face"].allowed == ("last", "zeros")
    assert specs["pooling"].allowed == ("frames", "mean") and specs["token"].allowed == ("auto", "cls", "mean")
    assert specs["precision"].allowed == ("auto", "float32", "bfloat16", "float16") and specs["path"].required
    hints = get_type_hints(VisionEncoder.__init__, include_extras=True)
    assert hints["margin"] == Annotated[float, Range(0, 1)]
    assert hints["min_face"] == Annotated[int, Range(24, None)]
    assert hints["frame_batch"] == Annotated[int, Range(1, None)]
