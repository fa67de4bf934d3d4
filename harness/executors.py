"""The Ray executor: one Ray task per training cell with its evaluation grid.

Workers train (or restore) the model, evaluate its cells and return the result rows and
predictions; the driver alone writes the result store, so the store never sees concurrent
writers and a driver restart resumes from what was stored. Checkpoints are written by the
workers under the run directory, which must therefore be on storage the workers share
(always true on a local Ray instance; on a cluster, use a shared filesystem for ``--out``).

Connecting: ``ray.init()`` joins the cluster named by ``RAY_ADDRESS`` when set (e.g.
``RAY_ADDRESS=ray://head:10001``), else it starts a local instance. Each task asks for one
GPU when the cluster has GPUs, else one CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.runtime import select_device
from harness.sweep import DatasetCache, EvalCell, TrainingCell, run_training_cell


def _train_and_evaluate(t: TrainingCell, cells: list[EvalCell], out: str, device_name: str,
                        cfg_hash: str) -> tuple[list[dict[str, Any]], list[tuple[EvalCell, dict[str, Any], Any]]]:
    trainings: list[dict[str, Any]] = []
    results: list[tuple[EvalCell, dict[str, Any], Any]] = []
    run_training_cell(t, cells, DatasetCache(), Path(out), select_device(device_name), cfg_hash, trainings.append,
                      lambda cell, row, preds: results.append((cell, row, preds)))
    return trainings, results


def run_on_ray(todo: list[tuple[TrainingCell, list[EvalCell]]], out: Path, device_name: str, cfg_hash: str,
               emit_training: Callable[[dict[str, Any]], None],
               emit_result: Callable[[EvalCell, dict[str, Any], Any], None]) -> None:
    """Run every training cell of ``todo`` as a Ray task; write results as tasks finish."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("executor 'ray' needs the ray package: pip install 'mcer-bench[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(num_gpus=1 if gpus else 0, num_cpus=1, max_retries=0)(_train_and_evaluate)
        pending = {task.remote(t, cells, str(out.resolve()), device_name, cfg_hash): t for t, cells in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                pending.pop(ref)
                trainings, results = ray.get(ref)
                for row in trainings:
                    emit_training(row)
                for cell, row, preds in results:
                    emit_result(cell, row, preds)
    finally:
        if started_here:
            ray.shutdown()
