"""The built-in demo sweep: what ``mcer-bench run`` does without a config file."""

from __future__ import annotations

from typing import Any

DEMO_CONFIG: dict[str, Any] = {
    "run": {"name": "demo", "seeds": [0, 1, 2], "corruption_seed": 0},
    "train": {"epochs": 25, "patience": 6},
    "models": [
        {"name": "text-only"},
        {"name": "early-fusion"},
    ],
    "datasets": [{"name": "synthetic", "options": {"keep_raw": False}}],
    "corruptions": [
        {"name": "feature-gaussian", "severities": [1, 2, 3, 4, 5], "options": {"modality": "audio"}},
        {"name": "feature-gaussian", "severities": [1, 2, 3, 4, 5], "options": {"modality": "text"}},
    ],
    "report": {"metric": "wf1", "reference": "text-only"},
}
