"""Deterministic fault injection: kill (or stop) this process at a named point of a sweep.

The fault-injection suite (``pytest -m faults``, see docs/FAULTS.md) sets the environment
variable ``MCER_BENCH_FAULT`` to ``POINT:N[:ACTION]`` (several specs separated by commas);
when execution reaches ``POINT`` for the ``N``-th time (1-based, counted per process) the
process sends itself ``SIGKILL`` (``ACTION`` ``kill``, the default) or ``SIGSTOP`` (``stop``:
it freezes, holding whatever it holds, until someone sends ``SIGCONT``). Unset, :func:`hit` is
a dictionary lookup and a return: nothing else happens.

The points:

``train-step``
    after each optimiser step of :func:`harness.train.fit` (mid-epoch).
``checkpoint-tmp-written``
    a checkpoint's temporary file is written and fsynced, not yet renamed into place.
``checkpoint-before-digest``
    a checkpoint is in place, its ``.sha256`` sidecar not yet written.
``eval-cell``
    between two evaluation cells of a training cell (after a row left the worker).
``store-before-commit``
    inside the result store's write transaction: the row is inserted, not committed.
``store-after-commit``
    a result row is committed.
"""

from __future__ import annotations

import os
import signal

ENV = "MCER_BENCH_FAULT"
POINTS = ("train-step", "checkpoint-tmp-written", "checkpoint-before-digest", "eval-cell", "store-before-commit",
          "store-after-commit")
ACTIONS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}

_counts: dict[str, int] = {}
_parsed: dict[str, dict[str, tuple[int, str]]] = {}


def parse(spec: str) -> dict[str, tuple[int, str]]:
    """``"point:N[:action],..."`` as ``{point: (N, action)}``; ValueError naming the bad part."""
    out: dict[str, tuple[int, str]] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        bits = part.split(":")
        if len(bits) not in (2, 3) or bits[0] not in POINTS or not bits[1].isdigit() or int(bits[1]) < 1 \
                or (len(bits) == 3 and bits[2] not in ACTIONS):
            raise ValueError(f"{ENV}: bad fault spec {part!r}; expected POINT:N[:ACTION] with POINT one of "
                             f"{', '.join(POINTS)}, N >= 1 and ACTION one of {', '.join(ACTIONS)}")
        out[bits[0]] = (int(bits[1]), bits[2] if len(bits) == 3 else "kill")
    return out


def hit(point: str) -> None:
    """Count one arrival at ``point`` and act if ``MCER_BENCH_FAULT`` says so (else do nothing)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    if spec not in _parsed:
        _parsed[spec] = parse(spec)
    target = _parsed[spec].get(point)
    if target is None:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] == target[0]:
        os.kill(os.getpid(), ACTIONS[target[1]])
