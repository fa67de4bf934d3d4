"""The embedded default dataset: seeded synthetic two-speaker dialogues with raw media.

Each utterance has a latent emotion among ``neutral, happy, sad, angry``, i.e. a point of
(arousal, valence): neutral (low, +), happy (high, +), sad (low, -), angry (high, -).
Each modality is a partial, noisy view of it, so that fusion beats any single modality:

* **text** (strongest): the transcript contains a word of the emotion's lexicon with
  probability ``text_cue_prob``, and a misleading word of another emotion with probability
  ``text_misleading_prob``; the rest are filler words.
* **audio**: a voiced harmonic signal at 16 kHz whose pitch (f0) and loudness-modulation
  rate rise with arousal, with a per-speaker pitch offset and a quiet noise floor. It
  tells arousal, not valence; added noise hides the harmonics, so it measurably hurts.
* **video**: a short RGB clip of a face-like disc whose colour and mouth curvature follow
  valence, at a jittered position over a textured background. It tells valence only.

Dialogues alternate between two speakers, each keeping a mood that changes with
probability ``mood_change_prob`` per utterance, so dialogue context carries information.
Features are extracted by the registered extractors ``hash-embed``, ``logmel`` and
``frame-stats``, each standardised per dimension with the clean train split's statistics (the
``standardized`` extractor, whose constants the card stores, so corrupted media re-extracted
later are scaled the same way). Each utterance also carries a sentiment ``score`` in [-3, 3] (valence times
intensity) so the same data serves regression models (``task="regression"``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import numpy as np

from harness.data.types import MODALITIES, BenchDataset, DataSpec, Dialogue, RawMedia, Task, Utterance
from harness.datasets.spec_only import spec_dataset, spec_only
from harness.extractors.projected import Standardized
from harness.options import PositiveFloat, PositiveInt, UnitInterval
from harness.registry import DATASETS, EXTRACTORS

Modality = Literal[MODALITIES]  # type: ignore[valid-type]
CLASS_NAMES = ("neutral", "happy", "sad", "angry")
AROUSAL = np.array([0, 1, 0, 1])  # high arousal: happy, angry
VALENCE = np.array([1, 1, -1, -1])  # positive: neutral, happy
LEXICON = {
    "neutral": ["okay", "fine", "sure", "alright", "noted", "normal"],
    "happy": ["great", "wonderful", "love", "glad", "awesome", "fantastic"],
    "sad": ["sorry", "miss", "lonely", "lost", "tired", "cry"],
    "angry": ["hate", "unfair", "furious", "stupid", "ridiculous", "annoyed"],
}
FILLER = (
    "i you we the a it is was to of and that this so well then about there here what maybe "
    "just really think know said going today tomorrow work home meeting call back again now"
).split()
SAMPLE_RATE = 16000
FPS = 10.0


def _transcript(rng: np.random.Generator, cls: int, cue_p: float, mislead_p: float) -> str:
    n = int(rng.integers(4, 11))
    words = list(rng.choice(FILLER, size=n))
    if rng.random() < cue_p:
        words[int(rng.integers(0, n))] = str(rng.choice(LEXICON[CLASS_NAMES[cls]]))
    if rng.random() < mislead_p:
        other = int(rng.choice([c for c in range(4) if c != cls]))
        words[int(rng.integers(0, n))] = str(rng.choice(LEXICON[CLASS_NAMES[other]]))
    return " ".join(words)


def _waveform(rng: np.random.Generator, cls: int, speaker_offset_hz: float, duration_s: float,
              separation: float) -> np.ndarray:
    n = int(round(duration_s * SAMPLE_RATE))
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    high = AROUSAL[cls] == 1
    f0 = rng.normal(150.0 + separation * 80.0 * high, 30.0) + speaker_offset_hz
    f0 = float(np.clip(f0, 70.0, 400.0))
    vibrato = 1.0 + 0.02 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / SAMPLE_RATE
    voice = sum((0.7 ** k) * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in range(1, 6))
    mod_rate = rng.normal(3.0 + 3.0 * separation * high, 0.8)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * max(mod_rate, 0.5) * t + rng.uniform(0, 2 * np.pi))
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)  # 20 ms fade in/out
    signal = voice * envelope * ramp
    signal *= rng.uniform(0.25, 0.45) / (np.abs(signal).max() + 1e-9)
    noise = rng.standard_normal(n) * 0.004
    return (signal + noise).astype(np.float32)


def _frames(rng: np.random.Generator, cls: int, n_frames: int, size: int, separation: float) -> np.ndarray:
    positive = VALENCE[cls] > 0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = rng.uniform(40, 110, size=3)
    texture = rng.normal(0, 12, size=(size, size, 1))
    background = np.clip(base[None, None, :] + texture, 0, 255)
    # valence moves the face colour from cool to warm and bends the mouth
    warmth = rng.normal(0.5 + 0.5 * separation * (1 if positive else -1), 0.45)
    face_rgb = np.array([170 + 60 * warmth, 150 + 20 * warmth, 170 - 60 * warmth])
    curve = rng.normal(0.6 * separation * (1 if positive else -1), 0.35)
    cx, cy = size / 2 + rng.normal(0, size / 16, size=2)
    radius = size * rng.uniform(0.28, 0.36)
    clip = np.empty((n_frames, size, size, 3), dtype=np.float32)
    for f in range(n_frames):
        jx, jy = rng.normal(0, 0.6, size=2)
        fx, fy = cx + jx, cy + jy
        img = background.copy()
        face = (xx - fx) ** 2 + (yy - fy) ** 2 <= radius**2
        img[face] = face_rgb
        mouth_x = xx - fx
        mouth_y = fy + radius * 0.45 - curve * (radius * 0.4) * (1 - (mouth_x / (radius * 0.6)) ** 2)
        mouth = (np.abs(yy - mouth_y) < 1.2) & (np.abs(mouth_x) < radius * 0.6)
        img[mouth] = (40, 20, 20)
        for ex in (-0.35, 0.35):
            eye = (xx - (fx + ex * radius)) ** 2 + (yy - (fy - 0.25 * radius)) ** 2 <= (radius * 0.1) ** 2
            img[eye] = (20, 20, 30)
        clip[f] = img + rng.normal(0, 4, size=img.shape)
    return np.clip(clip, 0, 255).astype(np.uint8)


def _extractors(text_dim: int, n_mels: int, dims: tuple[tuple[str, int], ...], seed: int) -> dict[str, Any]:
    """The extractor of each modality (what the features and their widths come from); with
    ``dims``, only the modalities it names, each projected to its width."""
    extractors = {
        "text": EXTRACTORS.create("hash-embed", dim=text_dim),
        "audio": EXTRACTORS.create("logmel", n_mels=n_mels),
        "video": EXTRACTORS.create("frame-stats"),
    }
    if dims:  # the modalities named, each projected to its width
        extractors = {m: EXTRACTORS.create("projected", base=extractors[m].config(), dim=width, seed=seed)
                      for m, width in dims}
    return extractors


def synthetic_spec(task: Task = "classification", text_dim: int = 64, n_mels: int = 40,
                   dims: dict[str, int] | None = None) -> DataSpec:
    """The :class:`DataSpec` that :func:`synthetic` gives with these options, without generating
    any data (``mcer-bench describe`` builds models on it)."""
    widths = {m: ex.dim for m, ex in _extractors(text_dim, n_mels, tuple(sorted((dims or {}).items())), 0).items()}
    return DataSpec(
        dims=widths,
        task=task,  # type: ignore[arg-type]
        num_classes=len(CLASS_NAMES) if task == "classification" else None,
        num_speakers=2,
        class_names=CLASS_NAMES if task == "classification" else None,
        score_range=(-3.0, 3.0) if task == "regression" else None,
    )


@lru_cache(maxsize=4)
def _generate(n_train: int, n_valid: int, n_test: int, min_utts: int, max_utts: int, seed: int,
              text_cue_prob: float, text_misleading_prob: float, separation: float, mood_change_prob: float,
              frame_size: int, n_frames: int, text_dim: int, n_mels: int, keep_raw: bool,
              dims: tuple[tuple[str, int], ...] = ()) -> tuple:
    rng = np.random.default_rng(seed)
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    dialogues: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {}
    for split, n_dialogues in sizes.items():
        dialogues[split] = []
        for d in range(n_dialogues):
            did = f"syn-{split}-{d:04d}"
            n_utts = int(rng.integers(min_utts, max_utts + 1))
            moods = rng.integers(0, 4, size=2)
            offsets = rng.normal(0, 15, size=2)  # per-speaker pitch offset in Hz
            speaker = int(rng.integers(0, 2))
            rows = []
            for pos in range(n_utts):
                if pos > 0 and rng.random() < 0.8:
                    speaker = 1 - speaker
                if rng.random() < mood_change_prob:
                    moods[speaker] = rng.integers(0, 4)
                cls = int(moods[speaker])
                intensity = rng.uniform(0.5, 1.0) * (1.0 + AROUSAL[cls])
                score = float(np.clip(VALENCE[cls] * intensity * 1.4 + rng.normal(0, 0.25), -3, 3))
                duration = int(rng.integers(6, 13)) / 10.0  # 0.6 .. 1.2 s in 100 ms steps
                raw = RawMedia(
                    waveform=_waveform(rng, cls, float(offsets[speaker]), duration, separation),
                    sample_rate=SAMPLE_RATE,
                    frames=_frames(rng, cls, n_frames, frame_size, separation),
                    fps=FPS,
                    transcript=_transcript(rng, cls, text_cue_prob, text_misleading_prob),
                )
                rows.append({"uid": f"{did}-u{pos:02d}", "pos": pos, "speaker": speaker, "label": cls,
                             "score": score, "raw": raw})
            dialogues[split].append((did, rows))

    extractors = _extractors(text_dim, n_mels, dims, seed)
    flat = [r for split in dialogues.values() for _, rows in split for r in rows]
    media = [r["raw"] for r in flat]
    feats = {m: ex.extract(media) for m, ex in extractors.items()}
    n_train_utts = sum(len(rows) for _, rows in dialogues["train"])
    for m, ex in list(extractors.items()):  # standardised with the clean train split's statistics
        extractors[m] = Standardized.fitted(ex, feats[m][:n_train_utts])
        feats[m] = extractors[m].apply(feats[m])
    for i, r in enumerate(flat):
        r["features"] = {m: feats[m][i] for m in extractors}
        if not keep_raw:
            r["raw"] = None
    dims = {m: ex.dim for m, ex in extractors.items()}
    ex_config = {m: ex.config() for m, ex in extractors.items()}
    return dialogues, dims, ex_config


@DATASETS.register("synthetic", task="classification|regression", raw_media=True, default=True)
def synthetic(
    task: Task = "classification",
    n_train: PositiveInt = 48,
    n_valid: PositiveInt = 12,
    n_test: PositiveInt = 16,
    min_utts: PositiveInt = 6,
    max_utts: PositiveInt = 14,
    seed: int = 0,
    text_cue_prob: UnitInterval = 0.8,
    text_misleading_prob: UnitInterval = 0.1,
    separation: PositiveFloat = 0.7,
    mood_change_prob: UnitInterval = 0.25,
    frame_size: PositiveInt = 32,
    n_frames: PositiveInt = 8,
    text_dim: PositiveInt = 64,
    n_mels: PositiveInt = 40,
    keep_raw: bool = True,
    dims: dict[Modality, PositiveInt] | None = None,
) -> BenchDataset:
    """Seeded synthetic two-speaker dialogues with waveforms, RGB clips and transcripts.

    Sizes are numbers of dialogues per split; each has ``min_utts..max_utts`` utterances.
    ``separation`` (>0) scales how far apart the audio and video cues of the classes lie.
    ``dims`` (e.g. ``{"text": 768, "audio": 5, "video": 20}``) gives the data exactly the named
    modalities, at the widths of a reference configuration, through a fixed seeded projection
    of their features (the ``projected`` extractor), so a model preset can run on synthetic
    data (``{"text": 600, "audio": 300}`` drops video).
    """
    if min_utts > max_utts:
        raise ValueError(f"synthetic: need min_utts <= max_utts, got min_utts={min_utts}, max_utts={max_utts}")
    spec = synthetic_spec(task, text_dim, n_mels, dims)
    if spec_only():
        return spec_dataset("synthetic", spec, {"source": "synthetic generator (harness.datasets.synthetic)"})
    dialogues, _, ex_config = _generate(n_train, n_valid, n_test, min_utts, max_utts, seed, text_cue_prob,
                                        text_misleading_prob, separation, mood_change_prob, frame_size,
                                        n_frames, text_dim, n_mels, keep_raw, tuple(sorted((dims or {}).items())))
    splits = {
        split: [
            Dialogue(did, [
                Utterance(uid=r["uid"], dialogue_id=did, position=r["pos"], speaker=r["speaker"],
                          features=dict(r["features"]), label=r["label"], score=r["score"], raw=r["raw"])
                for r in rows
            ])
            for did, rows in items
        ]
        for split, items in dialogues.items()
    }
    card = {
        "source": "synthetic generator (harness.datasets.synthetic)",
        "seed": seed,
        "extractors": ex_config,
        "validation": "generated as its own split",
        "raw_media": "waveform 16 kHz, RGB clip, transcript" if keep_raw else "dropped (keep_raw=False)",
    }
    return BenchDataset(name="synthetic", spec=spec, splits=splits, card=card)
