"""Why does the full MCER model train worse than its own stripped variants? Training diagnostics.

For each variant of ``mcer`` and each seed, trains on the synthetic dataset and records per epoch:
train loss, validation loss and weighted F1 (``harness.train.fit``'s history), the gradient norm
of every top-level block (mean over the epoch's steps, before clipping), and, on the validation
split, each modality head's accuracy and the share of the fused logits each modality's weighted
logits carry (``|w_m l_m| / sum_k |w_k l_k|``). Writes ``diagnosis.json`` and
``learning_curves``, ``gradient_norms`` and ``logit_shares`` (PNG and PDF) under ``--out``.

    python benchmarks/diagnose_mcer.py --variants full aux_loss=off graphs=none --seeds 0 1 2 --out docs/diagnosis
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import DATASETS, MODELS
from harness.data.collate import collate_dialogues
from harness.train import TrainConfig, fit

MODS = ("text", "audio", "video")


def parse_variant(text: str) -> dict[str, Any]:
    """``"full"`` -> {}; ``"graphs=none"`` -> {"graphs": "none"}; values parsed as TOML when possible."""
    if text == "full":
        return {}
    key, value = text.split("=", 1)
    if value in ("off", "on"):  # the ablation set's spelling of booleans
        return {key: value == "on"}
    import tomllib

    try:
        return {key: tomllib.loads(f"v = {value}")["v"]}
    except tomllib.TOMLDecodeError:
        return {key: value}


@torch.inference_mode()
def head_stats(model: Any, dataset: Any) -> dict[str, float]:
    """Per-modality head accuracy and share of the fused logits on the validation split."""
    model.eval()
    batch = collate_dialogues(dataset.splits["valid"], dataset.spec, model.pooling)
    out = model(batch)
    mask = batch.mask
    labels = batch.labels[mask]
    logits = out.extras["modality_predictions"]
    weights = model.heads.weights
    mags = {m: (weights[m] * logits[m][mask]).abs().mean().item() for m in MODS}
    total = sum(mags.values()) or 1.0
    stats = {f"acc_{m}": float((logits[m][mask].argmax(-1) == labels).float().mean()) for m in MODS}
    stats.update({f"share_{m}": mags[m] / total for m in MODS})
    return stats


def run_one(variant: str, seed: int, args: argparse.Namespace, dataset: Any) -> dict[str, Any]:
    torch.manual_seed(seed)
    options = {**json.loads(args.options), **parse_variant(variant)}
    model = MODELS.create("mcer", dataset.spec, **options)
    grads: dict[str, list[float]] = defaultdict(list)
    epoch_grads: list[dict[str, float]] = []
    heads: list[dict[str, float]] = []

    def on_step(m: Any) -> None:
        for name, child in m.named_children():
            sq = [p.grad.pow(2).sum() for p in child.parameters() if p.grad is not None]
            if sq:
                grads[name].append(float(torch.stack(sq).sum().sqrt()))

    def progress(row: dict[str, float]) -> None:
        epoch_grads.append({k: float(np.mean(v)) for k, v in grads.items()})
        grads.clear()
        heads.append(head_stats(model, dataset))
        model.train()

    config = TrainConfig(epochs=args.epochs, patience=args.epochs, lr=args.lr, dialogue_batch_size=args.batch,
                         weight_decay=args.weight_decay, lr_schedule=args.schedule, amp=False)
    start = time.perf_counter()
    result = fit(model, dataset, config, seed=seed, device="cpu", progress=progress, on_step=on_step)
    history = [{**row, **{f"grad_{k}": v for k, v in g.items()}, **h}
               for row, g, h in zip(result.history, epoch_grads, heads)]
    return {"variant": variant, "seed": seed, "best_epoch": result.best_epoch,
            "best_valid_wf1": result.best_valid["wf1"], "seconds": time.perf_counter() - start, "history": history}


LEARNING = [("train_loss", "train loss"), ("valid_loss", "validation loss (CE)"), ("valid_wf1", "validation wF1")]
HEADS = [(f"share_{m}", f"{m} share of fused logits") for m in MODS] + \
        [(f"acc_{m}", f"{m} head accuracy (valid)") for m in MODS]


def _panels(runs: list[dict[str, Any]], panels: list[tuple[str, str]], stem: Path, title: str, cols: int = 3,
            log_y: bool = False) -> None:
    """One panel per ``(history key, title)``: per variant the mean over seeds and its range;
    a variant without the key (e.g. no graph block under ``graphs=none``) is left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(r["variant"] for r in runs))
    plt.rcParams.update({"pdf.fonttype": 42, "font.size": 8})
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.16, 2.1 * rows + 0.4), sharex=True, squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, (key, name) in zip(axes.flat, panels):
        for i, v in enumerate(variants):
            curves = [[row.get(key, np.nan) for row in r["history"]] for r in runs if r["variant"] == v]
            n = min(len(c) for c in curves)
            arr = np.array([c[:n] for c in curves], dtype=float)
            if np.isnan(arr).all():
                continue
            x = np.arange(1, n + 1)
            ax.plot(x, np.nanmean(arr, 0), color=colors(i), label=v, lw=1.2)
            if len(arr) > 1:
                ax.fill_between(x, np.nanmin(arr, 0), np.nanmax(arr, 0), color=colors(i), alpha=0.15, lw=0)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if log_y:
            ax.set_yscale("log")
    spare = list(axes.flat[len(panels):])
    for ax in spare:
        ax.set_visible(False)
    for ax in axes.flat[max(0, len(panels) - cols):len(panels)]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_tick_params(labelbottom=True)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(f"{title}: mean and range over {len({r['seed'] for r in runs})} seed(s)")
    if spare:  # the legend in the first empty slot
        spare[0].set_visible(True)
        spare[0].axis("off")
        spare[0].legend(handles, labels, frameon=False, loc="center")
        fig.tight_layout()
    else:
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        fig.legend(handles, labels, frameon=False, loc="lower center", ncol=len(labels))
    for ext in ("png", "pdf"):
        fig.savefig(f"{stem}.{ext}", dpi=200)
    plt.close(fig)


def figures(runs: list[dict[str, Any]], out: Path) -> list[Path]:
    """``learning_curves``, ``gradient_norms`` (every top-level block, log scale; the mean over
    an epoch's steps, before clipping) and
    ``logit_shares`` (each modality's share of the fused logits and its head's accuracy), as
    PNG and PDF under ``out``."""
    blocks = sorted({k for r in runs for row in r["history"] for k in row if k.startswith("grad_")})
    _panels(runs, LEARNING, out / "learning_curves", "MCER learning curves")
    _panels(runs, [(b, f"gradient norm: {b[len('grad_'):]}") for b in blocks], out / "gradient_norms",
            "MCER gradient norm per block", log_y=True)
    _panels(runs, HEADS, out / "logit_shares", "MCER modality heads")
    return [out / f"{stem}.png" for stem in ("learning_curves", "gradient_norms", "logit_shares")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["full", "aux_loss=off", "graphs=none"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--schedule", default="constant", choices=["constant", "cosine"], help="per-epoch lr schedule")
    parser.add_argument("--batch", type=int, default=4, help="dialogues per batch")
    parser.add_argument("--options", default='{"hidden": 64, "heads": 4, "dropout": 0.1}',
                        help="mcer options (JSON) every variant shares")
    parser.add_argument("--dataset", default="{}", help="synthetic dataset options (JSON)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="diagnosis")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = DATASETS.create("synthetic", keep_raw=False, **json.loads(args.dataset))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for variant in args.variants:
        for seed in args.seeds:
            r = run_one(variant, seed, args, dataset)
            runs.append(r)
            h = r["history"][-1]
            print(f"{variant:<22} seed {seed}: best valid wF1 {r['best_valid_wf1']:.3f} at epoch {r['best_epoch']}, "
                  f"last: train {h['train_loss']:.3f} valid {h['valid_loss']:.3f}, heads acc "
                  f"t/a/v {h['acc_text']:.2f}/{h['acc_audio']:.2f}/{h['acc_video']:.2f}, "
                  f"shares {h['share_text']:.2f}/{h['share_audio']:.2f}/{h['share_video']:.2f} "
                  f"({r['seconds']:.0f} s)", flush=True)
    (out / "diagnosis.json").write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))
    pngs = figures(runs, out)
    print(f"wrote {out / 'diagnosis.json'} and {', '.join(str(p) for p in pngs)}")


if __name__ == "__main__":
    main()
