"""Named ablation sets for the sweep: ``ABLATION_SETS[name] = [(variant_label, mcer_options), ...]``.

``"mcer-ablation"`` is the full ``mcer`` model followed by each switch turned off (or replaced)
in turn; every ``options`` dict is passed as ``MODELS.create("mcer", spec, **options)``.
"""

from __future__ import annotations

from typing import Any

FULL: dict[str, Any] = {}

ABLATION_SETS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "mcer-ablation": [
        ("full", dict(FULL)),
        ("denoiser=diff-dual", {"denoiser": "diff-dual"}),
        ("denoiser=standard", {"denoiser": "standard"}),
        ("denoiser=none", {"denoiser": "none"}),
        ("graphs=intra", {"graphs": "intra"}),
        ("graphs=inter", {"graphs": "inter"}),
        ("graphs=unaware", {"graphs": "unaware"}),
        ("graphs=none", {"graphs": "none"}),
        ("fusion=symmetric", {"fusion": "symmetric"}),
        ("fusion=concat", {"fusion": "concat"}),
        ("filter_gates=off", {"filter_gates": False}),
        ("aux_loss=off", {"aux_loss": False}),
        ("logit_weights=equal", {"logit_weights": (1.0, 1.0, 1.0)}),
    ],
}


def variants(name: str) -> list[tuple[str, dict[str, Any]]]:
    """The ``(label, options)`` list of ablation set ``name``; unknown names raise ``KeyError``."""
    if name not in ABLATION_SETS:
        raise KeyError(f"unknown ablation set {name!r}; known: {sorted(ABLATION_SETS)}")
    return [(label, dict(opts)) for label, opts in ABLATION_SETS[name]]
