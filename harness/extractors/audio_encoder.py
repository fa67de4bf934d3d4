"""Self-supervised speech encoders and Whisper's encoder, loaded from a local folder.

``audio-encoder`` runs wav2vec 2.0, HuBERT, WavLM, data2vec-audio or Whisper's encoder (the
folder's ``config.json`` says which) through ``AutoModel`` / ``AutoFeatureExtractor`` with
``local_files_only=True``: nothing is downloaded. Each waveform goes through the model's own
feature extractor first (its sampling rate, which decoding resamples to, and its
normalisation: zero mean and unit variance per utterance where the model was trained so;
Whisper's log-mel), then through the encoder, one utterance at a time (see
:meth:`AudioEncoder.extract`). Output per utterance: the chosen hidden state, ``[T, H]`` with
one row per encoder frame (20 ms for the convolutional encoders, 20 ms for Whisper), or its
mean over frames, ``[1, H]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from harness.data.types import RawMedia
from harness.extractors.local_model import LocalEncoder, Pooling, Precision
from harness.registry import EXTRACTORS
from harness.runtime import machine_independent_threads

AUDIO_MODEL_TYPES = {"wav2vec2": "wav2vec 2.0", "hubert": "HuBERT", "wavlm": "WavLM",
                     "data2vec-audio": "data2vec-audio", "whisper": "Whisper (its encoder)"}


@EXTRACTORS.register("audio-encoder", modality="audio")
class AudioEncoder(LocalEncoder):
    """Hidden states of a local speech encoder: frames ``[T, H]`` or their mean ``[1, H]``.

    ``layer``: the hidden state to return, as the model's ``hidden_states`` number them (0 = the
    input to the first transformer layer, i.e. the projected convolutional features or
    Whisper's embedded log-mel; ``n`` = after layer ``n``; negative counts from the end); by
    default the model's ``last_hidden_state``. ``layers``: the mean of these hidden states
    instead (equal, fixed weights), e.g. ``[6, 7, 8]``.
    """

    modality = "audio"
    name = "audio-encoder"
    MODEL_TYPES = AUDIO_MODEL_TYPES
    WHAT = "an audio encoder"

    def __init__(self, path: str, layer: int | None = None, layers: list[int] | None = None,
                 pooling: Pooling = "frames", device: str = "auto", precision: Precision = "auto") -> None:
        self._setup(path, layer, layers, pooling, device, precision)
        from transformers import AutoFeatureExtractor

        self._features = AutoFeatureExtractor.from_pretrained(self.path, local_files_only=True)
        self.sample_rate = int(self._features.sampling_rate)
        self._whisper = self.model_type == "whisper"
        self._encoder = self._model.get_encoder() if self._whisper else self._model
        self._min_samples = self._receptive_field()

    def _n_hidden_states(self) -> int:
        config = self._model.config
        return int(config.encoder_layers if self.model_type == "whisper" else config.num_hidden_layers) + 1

    @property
    def dim(self) -> int:
        return int(self._model.config.hidden_size)

    def frames_for(self, n_samples: int) -> int:
        """Encoder frames of a waveform of ``n_samples`` samples, by the model's own arithmetic:
        the convolutional feature encoder's output length, or for Whisper (which pads each
        ``chunk_length`` window to full length) the frames covering the real samples of each window."""
        if not self._whisper:
            return int(self._model._get_feat_extract_output_lengths(torch.tensor(n_samples)))
        chunk, hop = int(self._features.n_samples), int(self._features.hop_length)
        total = 0
        for start in range(0, n_samples, chunk):
            mel = -(-min(chunk, n_samples - start) // hop)  # the feature extractor's attention-mask length
            total += int(self._encoder._get_feat_extract_output_lengths(torch.tensor(mel)))
        return total

    def _receptive_field(self) -> int:
        """The fewest samples that give one encoder frame."""
        n = 1
        while self.frames_for(n) < 1:
            n += 1
        return n

    @torch.inference_mode()
    def extract(self, media: Sequence[RawMedia]) -> list[torch.Tensor]:
        """One utterance per forward pass: batching would pad, and padding changes the features of
        encoders whose convolutional front end normalises over time (wav2vec 2.0 base, HuBERT
        base) and of Whisper; one utterance alone is never padded (Whisper's fixed window aside)."""
        waves = []
        for i, m in enumerate(media):
            if m.waveform is None:
                raise ValueError(f"audio-encoder: item {i} has no waveform")
            if m.sample_rate != self.sample_rate:
                raise ValueError(f"audio-encoder: item {i} has sample rate {m.sample_rate} Hz, the model's feature "
                                 f"extractor expects {self.sample_rate} Hz (decode at that rate)")
            if len(m.waveform) < self._min_samples:
                raise ValueError(f"audio-encoder: item {i} has {len(m.waveform)} samples; this encoder needs at "
                                 f"least {self._min_samples} for one frame")
            waves.append(np.asarray(m.waveform, dtype=np.float32))
        out = []
        with machine_independent_threads(self._device):
            for wave in waves:
                frames = self._whisper_frames(wave) if self._whisper else self._conv_frames(wave)
                out.append(frames.mean(dim=0, keepdim=True) if self.pooling == "mean" else frames)
        return out

    def _conv_frames(self, wave: np.ndarray) -> torch.Tensor:
        inputs = self._features(wave, sampling_rate=self.sample_rate, return_tensors="pt")
        with self._autocast():
            res = self._encoder(inputs["input_values"].to(self._device), output_hidden_states=True)
        return self._hidden(res)[0].cpu().contiguous()

    def _whisper_frames(self, wave: np.ndarray) -> torch.Tensor:
        chunk = int(self._features.n_samples)
        parts = []
        for start in range(0, len(wave), chunk):
            inputs = self._features(wave[start:start + chunk], sampling_rate=self.sample_rate, return_tensors="pt",
                                    return_attention_mask=True)
            keep = int(self._encoder._get_feat_extract_output_lengths(inputs["attention_mask"].sum()))
            with self._autocast():
                res = self._encoder(inputs["input_features"].to(self._device), output_hidden_states=True)
            parts.append(self._hidden(res)[0, :keep].cpu())
        return torch.cat(parts).contiguous()
