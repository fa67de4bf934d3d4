"""The inputs of the raw-media demo (``configs/raw_pipeline.toml``), written to a local folder.

``python -m harness.run.raw_demo [FOLDER]`` (default ``runs/raw_pipeline_inputs``) writes:

* ``FOLDER/IEMOCAP_full_release``: the synthetic dataset's dialogues (seeded) in IEMOCAP's release
  layout: ``Session1..4`` hold the training dialogues and ``Session5`` the test ones, each
  utterance a 16 kHz WAV under ``sentences/wav``, its words in ``dialog/transcriptions`` and its
  emotion (neu, hap, sad, ang) and times in ``dialog/EmoEvaluation``. The ``raw-iemocap`` loader
  reads it exactly as it reads the real release.
* ``FOLDER/wav2vec2-tiny``: a tiny wav2vec 2.0 encoder with random weights and its feature
  extractor, saved with ``save_pretrained`` (:func:`harness.extractors.random_models.save_audio_encoder`).

Nothing is downloaded. A random-weight encoder's features show the pipeline working (decode,
corrupt, extract, cache, train, evaluate); they say nothing about how a trained wav2vec 2.0
behaves under noise. Writing the folder again gives the same files (everything is seeded); an
existing part is left as it is.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

DEFAULT_FOLDER = Path("runs") / "raw_pipeline_inputs"
EMOTIONS = {"neutral": "neu", "happy": "hap", "sad": "sad", "angry": "ang"}  # synthetic class -> IEMOCAP label


def write_iemocap_layout(root: Path, n_train: int = 32, n_test: int = 10, seed: int = 0) -> Path:
    """The synthetic dialogues in IEMOCAP's layout under ``root`` (see the module doc); returns ``root``."""
    import soundfile as sf

    from harness.registry import DATASETS

    data = DATASETS.create("synthetic", n_train=n_train, n_valid=1, n_test=n_test, seed=seed, keep_raw=True)
    names = data.spec.names
    dialogues = [(s, d) for s in ("train", "test") for d in data.splits[s]]
    for k, (split, d) in enumerate(dialogues):
        session = 5 if split == "test" else 1 + k % 4
        dialog = f"Ses{session:02d}F_impro{k:03d}"
        base = root / f"Session{session}"
        evaluation, transcript, t = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"], [], 0.0
        for i, u in enumerate(d.utterances):
            uid = f"{dialog}_{'MF'[u.speaker]}{i:03d}"
            assert u.raw is not None and u.raw.waveform is not None and u.label is not None
            end = t + len(u.raw.waveform) / u.raw.sample_rate
            evaluation.append(f"[{t:.4f} - {end:.4f}]\t{uid}\t{EMOTIONS[names[u.label]]}\t[2.5000, 2.5000, 2.5000]\n\n")
            transcript.append(f"{uid} [{t:08.4f}-{end:08.4f}]: {u.raw.transcript}")
            wav = base / "sentences" / "wav" / dialog / f"{uid}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(wav), u.raw.waveform, u.raw.sample_rate, subtype="FLOAT")
            t = end + 0.5
        for sub, lines in (("EmoEvaluation", evaluation), ("transcriptions", transcript)):
            (base / "dialog" / sub).mkdir(parents=True, exist_ok=True)
            (base / "dialog" / sub / f"{dialog}.txt").write_text("".join(lines) if sub == "EmoEvaluation"
                                                                 else "\n".join(lines) + "\n")
    return root


def write_inputs(folder: str | Path = DEFAULT_FOLDER) -> dict[str, Path]:
    """Write the demo's dataset folder and tiny encoder under ``folder`` unless they exist;
    returns their paths."""
    from harness.extractors.random_models import save_audio_encoder

    folder = Path(folder)
    paths = {"dataset": folder / "IEMOCAP_full_release", "encoder": folder / "wav2vec2-tiny"}
    if not paths["dataset"].is_dir():
        write_iemocap_layout(paths["dataset"])
    if not (paths["encoder"] / "config.json").is_file():
        save_audio_encoder(paths["encoder"], "wav2vec2", "tiny", seed=0)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.run.raw_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER), help=f"where (default: {DEFAULT_FOLDER})")
    args = parser.parse_args(argv)
    for what, path in write_inputs(args.folder).items():
        print(f"{what}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
