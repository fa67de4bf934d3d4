"""The mfcc extractor and the local transformer text encoder (tiny random BERT built here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import EXTRACTORS
from harness.data.types import RawMedia
from harness.extractors.audio import LogMel

SR = 16000


def _tone(freq: float, seconds: float = 0.5) -> RawMedia:
    t = np.arange(int(SR * seconds)) / SR
    return RawMedia(waveform=(0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sample_rate=SR)


def test_mfcc_frames_are_dct_of_logmel_and_stats_shape():
    media = [_tone(220.0), _tone(1800.0, 0.3)]
    frames = EXTRACTORS.create("mfcc", n_mfcc=12, stats=False).extract(media)
    mel = LogMel(n_mels=40, hop_ms=10.0).extract(media)
    from scipy.fft import dct

    ref = dct(mel[0].numpy(), type=2, norm="ortho", axis=1)[:, :12]
    assert frames[0].shape == (1 + 8000 // 160, 12) and np.allclose(frames[0].numpy(), ref, atol=1e-4)
    ex = EXTRACTORS.create("mfcc", n_mfcc=12)
    stats = ex.extract(media)
    assert ex.dim == 24 and stats[1].shape == (1, 24)
    assert torch.allclose(stats[0][0, :12], frames[0].mean(0), atol=1e-5)
    assert not torch.allclose(stats[0], stats[1], atol=0.5)  # a low and a high tone differ
    with pytest.raises(ValueError, match="n_mfcc <= n_mels"):
        EXTRACTORS.create("mfcc", n_mfcc=50)
    with pytest.raises(ValueError, match="item 0 has no waveform"):
        ex.extract([RawMedia(transcript="x")])


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("bert")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "this", "is", "good"]
    vocab = d / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n")
    out = d / "model"
    BertTokenizerFast(vocab=str(vocab)).save_pretrained(out)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(out)
    return out


def test_transformer_encoder_from_local_dir(tiny_bert):
    from transformers import AutoModel, AutoTokenizer

    ex = EXTRACTORS.create("transformer", path=str(tiny_bert), device="cpu")
    assert ex.dim == 32
    feats = ex.extract([RawMedia(transcript="hello world"), RawMedia(transcript="this is good xyz")])
    assert [f.shape for f in feats] == [(4, 32), (6, 32)]  # [CLS] w w [SEP]; [CLS] w w w [UNK] [SEP]
    tok = AutoTokenizer.from_pretrained(tiny_bert, local_files_only=True)
    assert tok("this is good xyz")["input_ids"] == [2, 7, 8, 9, 1, 3]
    model = AutoModel.from_pretrained(tiny_bert, local_files_only=True).eval()
    with torch.no_grad():
        ref = model(**tok(["hello world"], return_tensors="pt")).last_hidden_state[0]
    assert torch.allclose(feats[0], ref, atol=1e-5)  # padding in the batch does not change the result
    cfg = ex.config()
    assert cfg["name"] == "transformer" and len(cfg["model_sha256"]) == 64


def test_transformer_refuses_non_local_path(tmp_path):
    with pytest.raises(ValueError, match="must be a local model directory"):
        EXTRACTORS.create("transformer", path="bert-base-uncased")
