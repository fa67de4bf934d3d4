"""audio-encoder: tiny random wav2vec2 / HuBERT / WavLM / data2vec-audio / Whisper models saved here
with save_pretrained, loaded from their folder, never from the network."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from no_network import run_without_network

from harness import EXTRACTORS
from harness.data.types import RawMedia
from harness.datasets.media import decode_audio
from harness.extractors.random_models import AUDIO_TYPES, save_audio_encoder, save_vision_encoder

SR = 16000
SPEECH = Path(__file__).parent / "fixtures" / "speech"


@pytest.fixture(scope="module")
def encoders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audio-encoders")
    return {t: save_audio_encoder(root / t, t) for t in AUDIO_TYPES}


@pytest.fixture(scope="module")
def speech() -> list[RawMedia]:
    waves = [decode_audio(SPEECH / "s4_calm.wav", SR), decode_audio(SPEECH / "s1_excited.wav", SR)[:5001]]
    return [RawMedia(waveform=w, sample_rate=SR) for w in waves]


def conv_frames(n_samples: int, kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Output length of a stack of unpadded 1-D convolutions: L -> floor((L - k) / s) + 1 per layer."""
    for k, s in zip(kernels, strides):
        n_samples = (n_samples - k) // s + 1
    return n_samples


def whisper_frames(n_samples: int, window: int, hop: int = 160) -> int:
    """Whisper: each ``window``-sample chunk is padded to full length; its real samples cover
    ceil(n / hop) mel frames, and the encoder's stride-2 convolution halves them (rounding up)."""
    total = 0
    for start in range(0, n_samples, window):
        mel = math.ceil(min(window, n_samples - start) / hop)
        total += (mel - 1) // 2 + 1
    return total


def _reference(folder: Path, wave: np.ndarray):  # noqa: ANN202 - the model's own forward pass
    from transformers import AutoFeatureExtractor, AutoModel

    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    features = AutoFeatureExtractor.from_pretrained(folder, local_files_only=True)
    with torch.no_grad():
        if model.config.model_type == "whisper":
            inputs = features(wave, sampling_rate=SR, return_tensors="pt")
            return model.get_encoder()(inputs["input_features"], output_hidden_states=True)
        inputs = features(wave, sampling_rate=SR, return_tensors="pt")
        return model(inputs["input_values"], output_hidden_states=True)


@pytest.mark.parametrize("model_type", AUDIO_TYPES)
def test_frame_counts_follow_the_encoders_own_arithmetic(encoders, speech, model_type):
    ex = EXTRACTORS.create("audio-encoder", path=str(encoders[model_type]), device="cpu")
    feats = ex.extract(speech)
    config = ex._model.config
    for m, x in zip(speech, feats):
        n = len(m.waveform)
        if model_type == "whisper":
            expected = whisper_frames(n, window=2 * SR)  # the tiny Whisper's window: 2 s (real: 30 s)
        else:
            expected = conv_frames(n, tuple(config.conv_kernel), tuple(config.conv_stride))
        assert x.shape == (expected, ex.dim) == (ex.frames_for(n), 16), (model_type, n)
        assert torch.isfinite(x).all()
    # about 50 frames a second, as the real encoders (20 ms per frame)
    assert abs(feats[0].shape[0] / (len(speech[0].waveform) / SR) - 50) < 2
    pooled = EXTRACTORS.create("audio-encoder", path=str(encoders[model_type]), device="cpu", pooling="mean")
    assert torch.allclose(pooled.extract(speech[:1])[0], feats[0].mean(0, keepdim=True), atol=1e-6)


@pytest.mark.parametrize("model_type", ["wav2vec2", "whisper"])
def test_layer_selects_the_hidden_state_it_names(encoders, speech, model_type):
    folder = encoders[model_type]
    wave = speech[1].waveform
    ref = _reference(folder, wave)
    n = EXTRACTORS.create("audio-encoder", path=str(folder), device="cpu").frames_for(len(wave))
    outputs = {}
    for layer in (0, 1, 2, -1):
        x = EXTRACTORS.create("audio-encoder", path=str(folder), layer=layer, device="cpu").extract(speech[1:])[0]
        assert torch.allclose(x, ref.hidden_states[layer][0, :n], atol=1e-5), layer
        outputs[layer] = x
    assert not torch.allclose(outputs[0], outputs[1], atol=1e-3)  # the layers really differ
    default = EXTRACTORS.create("audio-encoder", path=str(folder), device="cpu").extract(speech[1:])[0]
    assert torch.allclose(default, ref.last_hidden_state[0, :n], atol=1e-5)
    mean = EXTRACTORS.create("audio-encoder", path=str(folder), layers=[0, 2], device="cpu").extract(speech[1:])[0]
    assert torch.allclose(mean, (ref.hidden_states[0][0, :n] + ref.hidden_states[2][0, :n]) / 2, atol=1e-5)


def test_the_feature_extractors_normalisation_and_rate_are_applied(encoders, speech, tmp_path):
    folder = encoders["hubert"]
    ex = EXTRACTORS.create("audio-encoder", path=str(folder), device="cpu")
    quiet = RawMedia(waveform=speech[1].waveform * 0.25, sample_rate=SR)
    # do_normalize=True: zero mean, unit variance per utterance, so a gain change changes nothing
    assert torch.allclose(ex.extract([quiet])[0], ex.extract(speech[1:])[0], atol=1e-4)
    copy = tmp_path / "hubert-8k"
    shutil.copytree(folder, copy)
    from transformers import Wav2Vec2FeatureExtractor

    Wav2Vec2FeatureExtractor(sampling_rate=8000, do_normalize=False).save_pretrained(copy)
    slow = EXTRACTORS.create("audio-encoder", path=str(copy), device="cpu")
    assert slow.sample_rate == 8000 and ex.sample_rate == SR  # decoding resamples to this rate
    assert slow.config()["model_sha256"] != ex.config()["model_sha256"]  # the digest covers the folder's files
    with pytest.raises(ValueError, match=r"item 0 has sample rate 16000 Hz, the model's feature extractor expects 8000"):
        slow.extract(speech[:1])
    with pytest.raises(ValueError, match=r"item 0 has 100 samples; this encoder needs at least 165"):
        ex.extract([RawMedia(waveform=np.zeros(100, np.float32), sample_rate=SR)])


def test_config_and_runtime_key_caches(encoders):
    ex = EXTRACTORS.create("audio-encoder", path=str(encoders["wavlm"]), layers=[1, 2], device="cpu")
    config = ex.config()
    assert config["name"] == "audio-encoder" and config["model_type"] == "wavlm" and config["layers"] == [1, 2]
    assert len(config["model_sha256"]) == 64 and "device" not in config
    assert ex.runtime() == {"device": "cpu", "precision": "float32"}


def test_bad_folders_are_one_clear_error(encoders, tmp_path, tiny_vit):
    def error(path: str, **options) -> str:
        with pytest.raises(ValueError) as err:
            EXTRACTORS.create("audio-encoder", path=path, device="cpu", **options)
        assert "\n" not in str(err.value)
        return str(err.value)

    assert "hub names such as 'facebook/wav2vec2-base' are never downloaded" in error("facebook/wav2vec2-base")
    empty = tmp_path / "no-weights"
    shutil.copytree(encoders["wav2vec2"], empty)
    (empty / "model.safetensors").unlink()
    assert f"model folder {str(empty)!r} has no weights" in error(str(empty))
    no_processor = tmp_path / "no-processor"
    shutil.copytree(encoders["wav2vec2"], no_processor)
    (no_processor / "preprocessor_config.json").unlink()
    assert "has no preprocessor_config.json" in error(str(no_processor))
    message = error(str(tiny_vit))
    assert "holds a 'vit' model, which is not an audio encoder" in message and "wav2vec2 (wav2vec 2.0)" in message
    assert "layer 3 does not name a hidden state: this model has 3" in error(str(encoders["hubert"]), layer=3)
    assert "give layer (one hidden state) or layers (their mean), not both" in error(
        str(encoders["hubert"]), layer=1, layers=[0, 1])
    # the declared choices are checked before the constructor runs (harness.options)
    assert "option 'pooling' does not allow 'max': must be one of 'frames', 'mean'" in error(str(encoders["hubert"]),
                                                                                           pooling="max")


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory) -> Path:
    return save_vision_encoder(tmp_path_factory.mktemp("vit") / "vit", "vit")


def test_encoders_load_and_run_with_sockets_refused(tmp_path):
    code = f"""
from pathlib import Path
import numpy as np
from harness import EXTRACTORS
from harness.data.types import RawMedia
from harness.extractors.random_models import save_audio_encoder, save_vision_encoder
root = Path({str(tmp_path)!r})
wave = RawMedia(waveform=np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1, sample_rate=16000)
clip = RawMedia(frames=np.full((3, 64, 64, 3), 120, np.uint8), fps=10.0)
shapes = {{}}
for t in ("wav2vec2", "whisper"):
    ex = EXTRACTORS.create("audio-encoder", path=str(save_audio_encoder(root / t, t)), device="cpu")
    shapes[t] = list(ex.extract([wave])[0].shape)
for t in ("clip", "videomae"):
    ex = EXTRACTORS.create("vision-encoder", path=str(save_vision_encoder(root / t, t)), device="cpu")
    shapes[t] = list(ex.extract([clip])[0].shape)
shapes["opensmile"] = list(EXTRACTORS.create("opensmile", feature_set="eGeMAPSv02").extract([wave])[0].shape)
result = {{"shapes": shapes}}
"""
    out = run_without_network(code)
    assert out["attempts"] == [], f"network attempts: {out['attempts']}"
    assert out["shapes"] == {"wav2vec2": [25, 16], "whisper": [25, 16], "clip": [3, 16], "videomae": [2, 16],
                             "opensmile": [1, 88]}
