"""Parallel executors: one task per training cell with its evaluation grid.

``run_on_processes`` (executor ``"processes"``) uses a pool of local worker processes;
``run_on_ray`` (executor ``"ray"``) uses Ray tasks, on a local instance or a cluster
(:mod:`harness.run.cluster` joins it and checks it first).

Workers train (or restore) the model, evaluate its cells and return the result rows and
predictions; the driver alone writes the result store, so the store never sees concurrent
writers and a driver restart resumes from what was stored. Checkpoints are written by the
workers under the run directory, which must therefore be on storage the workers share
(always true on one machine; on a cluster it is checked before the sweep starts).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.run.cluster import RaySession
from harness.run.plan import EvalCell, TrainingCell
from harness.run.worker import DatasetCache, FeatureCacheSettings, run_training_cell
from harness.runtime import select_device


class WorkerLostError(RuntimeError):
    """A worker process died mid-cell (killed, out of memory); stored rows are kept."""


_WORKER_CACHE: DatasetCache | None = None  # one per worker process: datasets and corrupted test sets are reused


def _train_and_evaluate(t: TrainingCell, cells: list[EvalCell], out: str, device_name: str, cfg_hash: str,
                        features: FeatureCacheSettings | None = None,
                        ) -> tuple[list[dict[str, Any]], list[tuple[EvalCell, dict[str, Any], Any]]]:
    global _WORKER_CACHE
    if _WORKER_CACHE is None or _WORKER_CACHE.features != features:
        _WORKER_CACHE = DatasetCache(features=features)
    trainings: list[dict[str, Any]] = []
    results: list[tuple[EvalCell, dict[str, Any], Any]] = []
    run_training_cell(t, cells, _WORKER_CACHE, Path(out), select_device(device_name), cfg_hash, trainings.append,
                      lambda cell, row, preds: results.append((cell, row, preds)))
    return trainings, results


TASK_RETRIES = 3
"""How often Ray runs a training cell again when its worker process or its node dies (the
cell's own errors are rows already, never retried). A retried cell restores the checkpoint
its first attempt may have written; the driver stores each cell's rows once."""
FEASIBILITY_CHECK_S = 10.0
FEASIBILITY_GRACE_S = 120.0
"""How long the cluster may lack a node with the resources a cell asks for (a lost GPU node
that an autoscaler may replace) before the sweep stops instead of waiting forever."""


def run_on_ray(todo: list[tuple[TrainingCell, list[EvalCell]]], out: Path, device_name: str, cfg_hash: str,
               emit_training: Callable[[dict[str, Any]], None],
               emit_result: Callable[[EvalCell, dict[str, Any], Any], None], session: RaySession,
               env: dict[str, str] | None = None, features: FeatureCacheSettings | None = None) -> None:
    """Run every training cell of ``todo`` as a Ray task of ``session`` (its worker processes
    started with ``env`` added to their environment, through Ray's runtime environment); emit
    results as tasks finish. ``features``: the sweep's extraction cache, which every task opens
    (its folder must be on storage the nodes share, as the run directory is).

    A node lost mid-cell costs that cell a retry, on another node (:data:`TASK_RETRIES`).
    When a cell runs out of retries, or the cluster no longer has a node with the resources
    a cell asks for, :class:`WorkerLostError` names the cell; what was stored stays, and
    ``--resume`` goes on from there.
    """
    import ray

    task = ray.remote(num_cpus=session.num_cpus, num_gpus=session.num_gpus, max_retries=TASK_RETRIES,
                      retry_exceptions=False, **({"runtime_env": {"env_vars": dict(env)}} if env else {})
                      )(_train_and_evaluate)
    pending = {task.remote(t, cells, str(out.resolve()), device_name, cfg_hash, features): t for t, cells in todo}
    lacking_since: float | None = None
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=FEASIBILITY_CHECK_S)
            if not done:  # a lost node may have taken the only GPU (or CPU) with it
                missing = session.missing_resources()
                lacking_since = None if missing is None else (lacking_since or time.monotonic())
                if lacking_since is not None and time.monotonic() - lacking_since > FEASIBILITY_GRACE_S:
                    raise WorkerLostError(f"{missing} for {FEASIBILITY_GRACE_S:g} s, so {len(pending)} training "
                                          f"cell(s) cannot run; stored cells are kept, rerun with --resume")
                continue
            for ref in done:
                t = pending.pop(ref)
                try:
                    trainings, results = ray.get(ref)
                except (ray.exceptions.NodeDiedError, ray.exceptions.WorkerCrashedError) as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise WorkerLostError(f"training cell {t.label!r} seed {t.seed} lost its Ray worker "
                                          f"{TASK_RETRIES + 1} times ({type(exc).__name__}: {first}); stored "
                                          f"cells are kept, rerun with --resume") from None
                for row in trainings:
                    emit_training(row)
                for cell, row, preds in results:
                    emit_result(cell, row, preds)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def _init_process_worker(threads: int, driver_pid: int) -> None:
    """Pool worker set-up: ``threads`` torch threads, and die with the driver (Linux)."""
    try:  # PR_SET_PDEATHSIG: a SIGKILLed driver must not leave workers training on
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != driver_pid:  # the driver died while this worker was starting: too late for the signal
        os._exit(1)
    import torch

    torch.set_num_threads(threads)


def default_workers() -> int:
    """Worker processes when ``run.workers`` is not set: the CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextlib.contextmanager
def worker_env(extra: dict[str, str] | None) -> Iterator[None]:
    """Set ``extra`` in this process's environment while workers are started (they inherit it),
    and restore the environment afterwards."""
    before = {k: os.environ.get(k) for k in extra or {}}
    os.environ.update(extra or {})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_on_processes(todo: list[tuple[TrainingCell, list[EvalCell]]], out: Path, device_name: str, cfg_hash: str,
                     emit_training: Callable[[dict[str, Any]], None],
                     emit_result: Callable[[EvalCell, dict[str, Any], Any], None], workers: int,
                     threads: int | None = None, env: dict[str, str] | None = None,
                     features: FeatureCacheSettings | None = None) -> None:
    """Run the training cells of ``todo`` on ``workers`` local processes (spawned, each with
    ``threads`` torch threads, default ``cores // workers``: :func:`harness.runtime.plan_workers`
    gives both, and with ``env`` added to their environment, e.g. the portable arithmetic
    mode's); the driver writes results as each cell finishes. ``features``: the sweep's
    extraction cache, shared by every worker.

    A worker that dies (e.g. killed by the kernel for memory) aborts the sweep with the
    training cell named; what was stored stays, and ``--resume`` goes on from there.
    """
    import concurrent.futures as cf
    import multiprocessing as mp

    if workers < 1:
        raise ValueError(f"run.workers must be >= 1, got {workers}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    threads = threads or max(1, default_workers() // workers)
    with worker_env(env), cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                                 initializer=_init_process_worker,
                                                 initargs=(threads, os.getpid())) as pool:
        futures = {pool.submit(_train_and_evaluate, t, cells, str(out.resolve()), device_name, cfg_hash, features): t
                   for t, cells in todo}
        try:
            for fut in cf.as_completed(futures):
                try:
                    trainings, results = fut.result()
                except cf.process.BrokenProcessPool as exc:
                    t = futures[fut]
                    raise WorkerLostError(f"a worker process died while running training cell {t.label!r} "
                                       f"seed {t.seed} ({exc}); stored cells are kept, rerun with --resume") from None
                for row in trainings:
                    emit_training(row)
                for cell, row, preds in results:
                    emit_result(cell, row, preds)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
