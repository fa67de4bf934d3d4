"""Temporal schedules for additive corruptions (noise level over time).

Every additive corruption takes ``schedule=`` in its constructor:

* ``"stationary"`` — the noise is spread evenly over the utterance.
* ``"bursts"`` — the noise is gated into 1-3 bursts covering 10-25 % of the utterance each.
* ``"spikes"`` — the noise is gated into 3-8 short spikes (5-20 ms of audio, or single frames
  of a feature sequence).
* ``"rising"`` — stationary within an utterance, but the SNR falls through the dialogue by
  utterance position: the first utterance gets ``target + RISE_DB``, the last ``target``.

For ``bursts`` and ``spikes`` the gate is rescaled so the noise *energy over the utterance*
still gives the target SNR: the same noise energy, concentrated in time (the local SNR inside
a burst is lower than the target). So the severity table's SNR is the achieved utterance SNR
for every schedule except ``rising``, whose achieved SNR is :func:`snr_for`.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

Schedule = Literal["stationary", "bursts", "spikes", "rising"]
"""The ``schedule`` option of every additive corruption (its declared choices)."""
SCHEDULES: tuple[str, ...] = get_args(Schedule)
RISE_DB = 15.0


def check_schedule(schedule: str, where: str) -> str:
    if schedule not in SCHEDULES:
        raise ValueError(f"{where}: schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    return schedule


def snr_for(schedule: str, target_db: float, position: float) -> float:
    """The SNR (dB) an utterance at relative dialogue ``position`` (0..1) gets."""
    if schedule == "rising":
        return float(target_db + RISE_DB * (1.0 - position))
    return float(target_db)


def gate(schedule: str, n: int, rng: np.random.Generator, unit: int = 1) -> np.ndarray | None:
    """A 0/1 float32 gate ``[n]`` for ``bursts``/``spikes`` (``None`` when the noise is not gated).

    ``unit`` is the number of samples per millisecond-ish time unit: 16 for 16 kHz audio
    (spike widths are 5-20 ms), 0 for feature frames (spikes are single frames).
    Always at least one sample is open, so the noise never vanishes.
    """
    if schedule not in ("bursts", "spikes"):
        return None
    g = np.zeros(n, dtype=np.float32)
    if schedule == "bursts":
        for _ in range(int(rng.integers(1, 4))):
            width = max(1, int(round(n * rng.uniform(0.10, 0.25))))
            start = int(rng.integers(0, max(1, n - width + 1)))
            g[start:start + width] = 1.0
    else:
        for _ in range(int(rng.integers(3, 9))):
            width = max(1, int(round(unit * rng.uniform(5, 20)))) if unit > 0 else 1
            start = int(rng.integers(0, max(1, n - width + 1)))
            g[start:start + width] = 1.0
    if not g.any():
        g[int(rng.integers(0, n))] = 1.0
    return g
