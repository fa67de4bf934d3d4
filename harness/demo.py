"""The built-in demo sweep: what ``mcer-bench run`` does without a config file.

MCER's ablation set and the baselines on the synthetic dataset, 3 seeds, evaluated under
raw-audio white noise (stationary and in spikes), two video corruptions and a missing-modality
sweep over each modality; trained in worker processes (one per core). Sized to finish on a
2-core CPU in under 15 minutes; ``configs/demo.toml`` is the same sweep as a file to copy.
"""

from __future__ import annotations

from typing import Any

# MCER at hidden 64 (the default is 128) trains in ~15 s on the synthetic data; dialogue-level
# models take 4 dialogues per step so that 48 training dialogues give 12 updates per epoch.
MCER_DEMO_OPTIONS: dict[str, Any] = {"hidden": 64, "heads": 4, "dropout": 0.1}

DEMO_CONFIG: dict[str, Any] = {
    "run": {"name": "demo", "seeds": [0, 1, 2], "corruption_seed": 0, "executor": "processes"},
    "train": {"epochs": 25, "patience": 6, "dialogue_batch_size": 4},
    "models": [
        {"set": "mcer-ablation", "options": MCER_DEMO_OPTIONS, "train": {"lr": 2e-3}},
        {"name": "text-only"},
        {"name": "audio-only"},
        {"name": "early-fusion"},
        {"name": "late-fusion"},
        {"name": "tfn"},
        {"name": "mult"},
        {"name": "misa"},
        {"name": "dialoguernn"},
    ],
    "datasets": [{"name": "synthetic"}],
    "corruptions": [
        {"name": "audio-white", "severities": [1, 3, 5]},
        {"name": "audio-white", "label": "audio-white (spikes)", "severities": [1, 3, 5],
         "options": {"schedule": "spikes"}},
        {"name": "video-occlusion", "severities": [1, 3, 5]},
        {"name": "video-noise", "severities": [1, 3, 5]},
        {"name": "feature-missing", "label": "missing audio", "severities": [1, 3, 5], "options": {"modality": "audio"}},
        {"name": "feature-missing", "label": "missing video", "severities": [1, 3, 5], "options": {"modality": "video"}},
        {"name": "feature-missing", "label": "missing text", "severities": [1, 3, 5], "options": {"modality": "text"}},
    ],
    "report": {"metric": "wf1", "reference": "text-only", "full_model": "mcer", "ablation_corruption": "audio-white"},
}
