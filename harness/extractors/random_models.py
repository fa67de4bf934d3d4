"""Random-weight encoders written to a local folder with ``save_pretrained``.

For tests, benchmarks and demos that must run without downloading anything: the folder has
the layout of a real checkpoint (``config.json``, weights, ``preprocessor_config.json``), so
``audio-encoder`` / ``vision-encoder`` load it exactly as they load a real one. Features of a
random-weight encoder show the pipeline working (shapes, frame counts, caching, corruption
effects passing through); they say nothing about how a trained encoder behaves.

``size="tiny"`` gives a few-thousand-parameter model (milliseconds per utterance; the audio ones
keep the real 20 ms frame step);
``size="base"`` the architecture's default configuration (wav2vec 2.0 base: 95M parameters,
the compute of the real model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

AUDIO_TYPES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper")
VISION_TYPES = ("vit", "clip", "dinov2", "videomae")

_TINY_CONV = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
              "conv_dim": (8, 8, 8), "conv_kernel": (10, 8, 4), "conv_stride": (5, 8, 8), "num_conv_pos_embeddings": 8,
              "num_conv_pos_embedding_groups": 2}
_TINY_VIT = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2}


def save_audio_encoder(path: str | Path, model_type: str = "wav2vec2", size: Literal["tiny", "base"] = "tiny",
                       seed: int = 0, whisper_chunk_s: int = 2) -> Path:
    """Write a random ``model_type`` speech encoder and its feature extractor to ``path``.

    The feature extractor normalises each utterance (``do_normalize=True``) at 16 kHz. A tiny
    Whisper gets a ``whisper_chunk_s`` second window (real Whisper: 30 s) and a matching
    ``max_source_positions``, so its frame arithmetic is Whisper's at a small size.
    """
    import transformers as tf

    if model_type not in AUDIO_TYPES:
        raise ValueError(f"model_type must be one of {', '.join(AUDIO_TYPES)}, got {model_type!r}")
    torch.manual_seed(seed)
    path = Path(path)
    if model_type == "whisper":
        chunk = whisper_chunk_s if size == "tiny" else 30
        small: dict[str, Any] = ({"d_model": 16, "encoder_layers": 2, "decoder_layers": 1, "encoder_attention_heads": 2,
                                  "decoder_attention_heads": 2, "encoder_ffn_dim": 32, "decoder_ffn_dim": 32,
                                  "vocab_size": 64, "max_target_positions": 16, "pad_token_id": 0, "bos_token_id": 1,
                                  "eos_token_id": 2, "decoder_start_token_id": 1} if size == "tiny" else {})
        config = tf.WhisperConfig(num_mel_bins=80, max_source_positions=chunk * 50, **small)
        tf.WhisperModel(config).eval().save_pretrained(path)
        tf.WhisperFeatureExtractor(feature_size=80, chunk_length=chunk).save_pretrained(path)
        return path
    config_class, model_class = {
        "wav2vec2": (tf.Wav2Vec2Config, tf.Wav2Vec2Model), "hubert": (tf.HubertConfig, tf.HubertModel),
        "wavlm": (tf.WavLMConfig, tf.WavLMModel), "data2vec-audio": (tf.Data2VecAudioConfig, tf.Data2VecAudioModel),
    }[model_type]
    small = dict(_TINY_CONV) if size == "tiny" else {}
    if size == "tiny" and model_type == "data2vec-audio":
        small["conv_pos_kernel_size"] = 8
    model_class(config_class(**small)).eval().save_pretrained(path)
    tf.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(path)
    return path


def save_vision_encoder(path: str | Path, model_type: str = "vit", size: Literal["tiny", "base"] = "tiny",
                        seed: int = 0, image_size: int = 32) -> Path:
    """Write a random ``model_type`` vision encoder and its image processor to ``path``.

    A tiny model sees ``image_size`` pixel squares in 8-pixel patches; ``size="base"`` uses the
    architecture's default (224-pixel ViT-B/16 class) configuration and processor. A tiny
    VideoMAE takes 4-frame clips (tubelets of 2 frames).
    """
    import transformers as tf

    if model_type not in VISION_TYPES:
        raise ValueError(f"model_type must be one of {', '.join(VISION_TYPES)}, got {model_type!r}")
    torch.manual_seed(seed)
    path = Path(path)
    tiny = size == "tiny"
    pixels = image_size if tiny else 224
    square = {"height": pixels, "width": pixels}
    if model_type == "vit":
        config = tf.ViTConfig(image_size=pixels, patch_size=8, intermediate_size=32, **_TINY_VIT) if tiny else tf.ViTConfig()
        model, processor = tf.ViTModel(config), tf.ViTImageProcessorPil(size=square)
    elif model_type == "clip":
        text = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
                "vocab_size": 64, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}
        vision = {"image_size": pixels, "patch_size": 8, "intermediate_size": 32, **_TINY_VIT}
        config = tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=8) if tiny else tf.CLIPConfig()
        model = tf.CLIPModel(config)
        processor = tf.CLIPImageProcessorPil(size={"shortest_edge": pixels}, crop_size=square)
    elif model_type == "dinov2":
        config = tf.Dinov2Config(image_size=pixels, patch_size=8, mlp_ratio=2, **_TINY_VIT) if tiny else tf.Dinov2Config()
        model = tf.Dinov2Model(config)
        processor = tf.BitImageProcessorPil(size={"shortest_edge": pixels + pixels // 7}, crop_size=square,
                                         do_center_crop=True)
    else:
        config = (tf.VideoMAEConfig(image_size=pixels, patch_size=8, num_frames=4, tubelet_size=2, intermediate_size=32,
                                    **_TINY_VIT) if tiny else tf.VideoMAEConfig())
        model = tf.VideoMAEModel(config)
        processor = tf.VideoMAEImageProcessorPil(size={"shortest_edge": pixels}, crop_size=square)
    model.eval().save_pretrained(path)
    processor.save_pretrained(path)  # the PIL processors save the same settings and type name as the default ones
    return path
