"""A gallery figure of corruptions: rows = corruptions, columns = severities 0..5.

Each panel shows one sample utterance after the corruption: the middle video frame for video
corruptions, the log-mel spectrogram for audio corruptions, the transcript for text ones and
the feature matrix ``[T, D]`` for feature-level ones. Written as PNG and PDF.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.corruption import MAX_SEVERITY, RawCorruption
from harness.data.types import Dialogue, Utterance
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
