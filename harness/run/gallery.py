"""Corruption galleries: a figure of corruptions x severities 0..5, and media you can play.

:func:`make_gallery` draws one sample utterance after each corruption (rows) at each severity
(columns): the middle video frame for video corruptions, the log-mel spectrogram for audio
corruptions, the transcript for text ones and the feature matrix ``[T, D]`` for feature-level
ones, written as PNG and PDF. :func:`write_media` writes what the figure cannot show: a WAV
file per audio corruption and severity (with the SNR each additive noise achieved), an
animated GIF per video corruption and severity, and the transcripts of text corruptions.
:func:`media_dialogue` turns your own recording (a WAV, an MP4...) into the utterance they
are applied to.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.corruption import MAX_SEVERITY, RawCorruption
from harness.data.types import Dialogue, RawMedia, Utterance
from harness.registry import CORRUPTIONS


def _panel(ax: Any, corruption: Any, utt: Utterance) -> None:
    field = getattr(corruption, "raw_field", "")
    if field == "frames":
        frames = utt.raw.frames
        ax.imshow(frames[len(frames) // 2])
    elif field == "waveform":
        import torch

        from harness.extractors.audio import logmel

        w = torch.from_numpy(np.asarray(utt.raw.waveform, dtype=np.float32))[None]
        ax.imshow(logmel(w, int(utt.raw.sample_rate), 40, 25.0, 10.0)[0].T.numpy(), origin="lower", aspect="auto",
                  cmap="magma", vmin=-14, vmax=4)
    elif field == "transcript":
        ax.text(0.02, 0.5, utt.raw.transcript, wrap=True, fontsize=6, va="center", transform=ax.transAxes)
    else:
        ax.imshow(utt.features[corruption.modality].T.numpy(), origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks([])
    ax.set_yticks([])


def make_gallery(dialogues: Sequence[Dialogue], names: Sequence[str], out: str | Path, seed: int = 0,
                 options: dict[str, dict[str, Any]] | None = None, utterance: int = 0) -> tuple[Any, list[Path]]:
    """Draw ``names`` x severities 0..5 for the ``utterance``-th utterance of ``dialogues[0]``.

    ``options`` maps a corruption name to its constructor options. Raw corruptions run with
    ``extractor="none"`` (only the media are drawn). ``out`` is the path without suffix (a
    ``.png``/``.pdf`` suffix is replaced); returns the matplotlib figure and the written paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not names:
        raise ValueError("make_gallery: names must list at least one corruption, got []")
    if not dialogues or not dialogues[0].utterances:
        raise ValueError("make_gallery: dialogues must hold at least one utterance")
    if not 0 <= utterance < len(dialogues[0]):
        raise ValueError(f"make_gallery: utterance must be in 0..{len(dialogues[0]) - 1}, got {utterance}")
    options = options or {}
    cols = MAX_SEVERITY + 1
    fig, axes = plt.subplots(len(names), cols, figsize=(1.6 * cols, 1.4 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        opts = dict(options.get(name, {}))
        entry = CORRUPTIONS.get(name)
        c = CORRUPTIONS.create(name, **opts)
        if isinstance(c, RawCorruption) and c.extractor is None:
            c = CORRUPTIONS.create(name, **{**opts, "extractor": "none"})
        table = entry.obj.table
        for s in range(cols):
            utt = c(list(dialogues), s, seed)[0].utterances[utterance] if s else dialogues[0].utterances[utterance]
            ax = axes[r][s]
            _panel(ax, c, utt)
            if r == 0:
                ax.set_title(f"severity {s}", fontsize=7)
            ax.set_xlabel(f"{table.values[s]:g} {table.unit}".strip(), fontsize=6)
            if s == 0:
                ax.set_ylabel(name, fontsize=7)
    fig.tight_layout()
    base = Path(out)
    base = base.with_suffix("") if base.suffix in (".png", ".pdf") else base
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [base.with_suffix(".png"), base.with_suffix(".pdf")]
    # TrueType (Type 42) fonts: publishers' PDF checks (IEEE PDF eXpress, ACM) reject Type 3
    with plt.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        fig.savefig(paths[0], dpi=150)
        fig.savefig(paths[1])
    return fig, paths


# ------------------------------------------------------------------------------ playable media

GIF_MAX_SIDE = 320  # frames larger than this are scaled down (aspect kept) for the GIFs
GIF_MIN_SIDE = 128  # smaller ones are scaled up by a whole factor (nearest pixel), so they can be seen
SNR_PARAMETER = "snr_db"  # a severity table in this parameter means additive noise at a target SNR


@dataclass(frozen=True)
class MediaItem:
    """One written gallery file. ``snr_db`` is the SNR the noise achieved in the WAV file
    (additive noise only): ``10 log10(sum(clean^2) / sum((noisy - clean)^2))`` over the whole
    utterance, rounded to 0.01 dB; ``target`` is the severity table's value with its unit."""

    corruption: str
    severity: int
    path: str
    kind: str  # "wav", "gif" or "txt"
    target: str
    snr_db: float | None = None


def achieved_snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR in dB of ``noisy`` against ``clean`` (float arrays of one length)."""
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noisy, dtype=np.float64) - clean
    return float(10.0 * np.log10(max(np.sum(clean**2), 1e-30) / max(np.sum(noise**2), 1e-30)))


def raw_field(name: str) -> str | None:
    """The raw field (``waveform``, ``frames``, ``transcript``) corruption ``name`` acts on;
    ``None`` for a feature-level corruption."""
    obj = CORRUPTIONS.get(name).obj
    if not issubclass(obj, RawCorruption):
        return None
    return getattr(obj, "raw_field", None) or None


def write_media(dialogues: Sequence[Dialogue], names: Sequence[str], out: str | Path, seed: int = 0,
                options: dict[str, dict[str, Any]] | None = None, utterance: int = 0) -> list[MediaItem]:
    """Write the ``utterance``-th utterance of ``dialogues[0]`` after each raw-media corruption of
    ``names`` at severities 0..5 under ``out/<name>/``: ``s<k>.wav`` (16-bit PCM at the
    utterance's sample rate) for audio, ``s<k>.gif`` (at its fps) for video, and one
    ``transcripts.txt`` for text. Feature-level corruptions have no media and are skipped.
    Also writes ``out/media.json`` listing every item; returns the items.

    Severity 0 is the clean utterance. The corruptions see every dialogue passed in (babble
    draws its talkers from them). The SNR of additive noise (a severity table in ``snr_db``)
    is measured on what the WAV files hold, 16-bit samples clipped to [-1, 1], against
    ``s0.wav``, so clipping at a low SNR shows in it.
    """
    import soundfile

    options = options or {}
    out = Path(out)
    items: list[MediaItem] = []
    clean = dialogues[0].utterances[utterance]
    for name in names:
        field = raw_field(name)
        if field is None:
            continue
        c = CORRUPTIONS.create(name, **{**options.get(name, {}), "extractor": "none"})
        table = CORRUPTIONS.get(name).obj.table
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for s in range(MAX_SEVERITY + 1):
            utt = c(list(dialogues), s, seed)[0].utterances[utterance] if s else clean
            target = f"{table.values[s]:g} {table.unit}".strip()
            if field == "waveform":
                wave = np.asarray(utt.raw.waveform, dtype=np.float32)
                path = folder / f"s{s}.wav"
                soundfile.write(path, np.clip(wave, -1.0, 1.0), int(utt.raw.sample_rate), subtype="PCM_16")
                snr = None
                if s and table.parameter == SNR_PARAMETER:  # measured on the samples the WAV files hold
                    stored, _ = soundfile.read(path, dtype="float64")
                    reference, _ = soundfile.read(folder / "s0.wav", dtype="float64")
                    snr = round(achieved_snr_db(reference, stored), 2) + 0.0
                items.append(MediaItem(name, s, str(path), "wav", target, snr))
            elif field == "frames":
                path = folder / f"s{s}.gif"
                write_gif(path, np.asarray(utt.raw.frames), float(utt.raw.fps or 10.0))
                items.append(MediaItem(name, s, str(path), "gif", target))
            elif field == "transcript":
                lines.append(f"severity {s} ({table.parameter} {target}): {utt.raw.transcript}")
        if lines:
            path = folder / "transcripts.txt"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            items.append(MediaItem(name, 0, str(path), "txt", ""))
    out.mkdir(parents=True, exist_ok=True)
    (out / "media.json").write_text(json.dumps([asdict(i) for i in items], indent=2), encoding="utf-8")
    return items


def write_gif(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """Animated GIF (looping) of uint8 RGB ``frames`` ``[F, H, W, 3]`` at ``fps``; frames are
    scaled (aspect kept) to a longest side between 128 and 320 pixels."""
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"write_gif: frames must be uint8 [F, H, W, 3] with F >= 1, got shape {frames.shape}")
    images = [Image.fromarray(np.ascontiguousarray(f.astype(np.uint8))) for f in frames]
    side = max(images[0].size)
    if side > GIF_MAX_SIDE:
        scale = GIF_MAX_SIDE / side
        size = (max(1, round(images[0].width * scale)), max(1, round(images[0].height * scale)))
        images = [im.resize(size, Image.Resampling.LANCZOS) for im in images]
    elif side < GIF_MIN_SIDE:
        k = -(-GIF_MIN_SIDE // side)
        images = [im.resize((im.width * k, im.height * k), Image.Resampling.NEAREST) for im in images]
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:], duration=max(20, round(1000.0 / fps)), loop=0)
    return path


def media_dialogue(path: str | Path, sample_rate: int = 16000, fps: float = 10.0, max_seconds: float = 10.0) -> Dialogue:
    """A one-utterance dialogue holding the media of ``path`` (decoded with PyAV): its first
    audio stream as a mono waveform at ``sample_rate`` Hz and its video as RGB frames at
    ``fps``, each cut to the first ``max_seconds``. A file with only one of them gives only that
    one; a file with neither is refused, naming it."""
    from harness.datasets.media import decode_audio, decode_frames
    from harness.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--input {str(path)!r} does not exist")
    problems = []
    waveform = frames = None
    try:
        waveform = decode_audio(path, sample_rate, 0.0, max_seconds)
    except DataError as exc:
        problems.append(str(exc))
    try:
        (frames,) = decode_frames(path, fps=fps, size=None, max_frames=max(1, int(round(fps * max_seconds))))
    except DataError as exc:
        problems.append(str(exc))
    if waveform is None and frames is None:
        raise ValueError(f"--input {str(path)!r} holds no audio or video PyAV can decode ({'; '.join(problems)})")
    if waveform is not None and not len(waveform):
        raise ValueError(f"--input {str(path)!r}: its audio stream holds no samples")
    raw = RawMedia(waveform=waveform, sample_rate=sample_rate if waveform is not None else None,
                   frames=np.asarray(frames) if frames is not None else None, fps=fps if frames is not None else None)
    utt = Utterance(uid=f"input/{path.name}", dialogue_id="input", position=0, speaker=0, features={}, raw=raw)
    return Dialogue("input", [utt])


def media_problem(dialogue: Dialogue, name: str) -> str | None:
    """Why corruption ``name`` cannot be shown on ``dialogue``'s media (``None`` when it can)."""
    field = raw_field(name)
    if field is None:
        return f"{name!r} corrupts extracted features, not media; a gallery of your own media shows raw-media corruptions"
    raw = dialogue.utterances[0].raw
    if raw is None or getattr(raw, field, None) is None:
        what = {"waveform": "an audio stream", "frames": "a video stream", "transcript": "a transcript"}[field]
        return f"{name!r} needs {what}, which the input has not"
    return None
