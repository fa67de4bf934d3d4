"""Galleries you can listen to: a WAV per audio corruption and severity (with the SNR additive
noise achieved in it), a GIF per video corruption and severity, and the same on your own
media (a WAV and an MP4 written by the test)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile

from harness.run.cli import main
from harness.run.gallery import achieved_snr_db

SR = 16000


def _speech(seconds: float = 1.5) -> np.ndarray:
    """A voiced-sounding test signal: a 180 Hz tone with harmonics and a syllable envelope."""
    t = np.arange(int(seconds * SR)) / SR
    voice = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 6))
    return (0.2 * voice * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def _snr_lines(text: str) -> dict[tuple[str, int], float]:
    found = re.findall(r"wrote \S+/([\w-]+)/s(\d)\.wav  \S+ severity \d \(([-\d.]+) dB\), achieved SNR ([-\d.]+) dB",
                       text)
    return {(name, int(s)): float(snr) for name, s, _, snr in found}


def test_gallery_writes_wavs_with_their_snr_and_gifs(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "g"
    assert main(["corruptions", "gallery", "audio-white", "audio-pink", "audio-reverb", "video-occlusion", "text-asr",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("audio-white", "audio-pink", "audio-reverb"):
        waves = [soundfile.read(out / name / f"s{s}.wav", dtype="float32") for s in range(6)]
        assert all(sr == SR for _, sr in waves) and len({len(w) for w, _ in waves}) == 1
        assert not np.array_equal(waves[0][0], waves[5][0])
    snr = _snr_lines(printed)
    assert set(snr) == {(n, s) for n in ("audio-white", "audio-pink") for s in range(1, 6)}  # additive noise only
    targets = {1: 20.0, 2: 15.0, 3: 10.0, 4: 5.0, 5: 0.0}
    for (name, s), value in snr.items():
        assert value == pytest.approx(targets[s], abs=0.1), (name, s)
        clean, _ = soundfile.read(out / name / "s0.wav", dtype="float64")
        noisy, _ = soundfile.read(out / name / f"s{s}.wav", dtype="float64")
        assert value == pytest.approx(achieved_snr_db(clean, noisy), abs=0.006)  # printed = measured on the files
    for s in range(6):
        gif = Image.open(out / "video-occlusion" / f"s{s}.gif")
        assert gif.n_frames == 8 and max(gif.size) >= 128
    assert len((out / "text-asr" / "transcripts.txt").read_text().splitlines()) == 6
    manifest = json.loads((out / "media.json").read_text())
    assert len([m for m in manifest if m["kind"] == "wav"]) == 18
    assert (out / "corruption_gallery.png").stat().st_size > 10_000


def test_input_wav(tmp_path, capsys):
    wav = tmp_path / "speech.wav"
    speech = _speech()
    soundfile.write(wav, speech, SR, subtype="FLOAT")
    out = tmp_path / "mine"
    assert main(["corruptions", "gallery", "--input", str(wav), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # the default gallery, less its video corruptions (a WAV has no frames)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["audio-reverb", "audio-spikes", "audio-white"]
    clean, sr = soundfile.read(out / "audio-white" / "s0.wav", dtype="float32")
    assert sr == SR and len(clean) == len(speech)
    assert np.abs(clean - speech).max() < 1e-3  # the input itself, as 16-bit samples
    snr = _snr_lines(printed)
    assert sorted(snr) == [("audio-white", s) for s in range(1, 6)]
    assert snr[("audio-white", 3)] == pytest.approx(10.0, abs=0.1)
    assert main(["corruptions", "gallery", "video-jpeg", "--input", str(wav), "--out", str(out)]) == 2
    assert "'video-jpeg' needs a video stream, which the input has not" in capsys.readouterr().err
    assert main(["corruptions", "gallery", "feature-gaussian", "--input", str(wav), "--out", str(out)]) == 2
    assert "corrupts extracted features, not media" in capsys.readouterr().err


def _write_mp4(path, seconds: float = 1.5, fps: int = 10) -> None:
    """An H.264 + AAC clip: a white bar moving over green, and the test speech signal."""
    import av

    speech = _speech(seconds)
    with av.open(str(path), "w") as c:
        video = c.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = c.add_stream("aac", rate=SR, layout="mono")
        for i in range(int(seconds * fps)):
            img = np.zeros((48, 64, 3), np.uint8)
            img[..., 1] = 90
            img[:, (4 * i) % 56:(4 * i) % 56 + 8] = 255
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(packet)
        for packet in video.encode():
            c.mux(packet)
        for start in range(0, len(speech) - 1024, 1024):
            frame = av.AudioFrame.from_ndarray(speech[None, start:start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = SR, start
            for packet in audio.encode(frame):
                c.mux(packet)
        for packet in audio.encode():
            c.mux(packet)


def test_input_mp4(tmp_path, capsys):
    from PIL import Image

    clip = tmp_path / "clip.mp4"
    try:
        _write_mp4(clip)
    except Exception as exc:  # noqa: BLE001 - an FFmpeg build without the encoders
        pytest.skip(f"PyAV here cannot write an H.264/AAC test clip: {exc}")
    out = tmp_path / "clip"
    assert main(["corruptions", "gallery", "--input", str(clip), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "audio-reverb", "audio-spikes", "audio-white", "video-gaussian-blur", "video-jpeg", "video-occlusion"]
    gif = Image.open(out / "video-occlusion" / "s5.gif")
    assert 12 <= gif.n_frames <= 15  # 10 fps over the clip
    assert gif.size == (128, 96)  # 64 x 48 scaled up by 2 (aspect kept) to a longest side of 128
    assert _snr_lines(printed)[("audio-white", 1)] == pytest.approx(20.0, abs=0.1)
