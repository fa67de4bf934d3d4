"""The driver: owns a run directory (its lock, config and result store) and runs the plan.

``run_sweep`` writes ``config.toml``, plans the cells, skips the stored ones, hands training
cells to an executor and stores every row the workers send back; only the driver writes the
store, so a crash or a restart resumes where it stopped and no cell is run twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
import torch

from harness.provenance import code_version, config_hash, now_utc, package_versions
from harness.registry import worker_environment
from harness.run.cluster import RaySession, check_shared_storage, open_ray, ray_address
from harness.run.config import SweepConfig
from harness.run.failures import FailureGroup, group_failures
from harness.run.plan import EvalCell, SweepError, make_plan
from harness.run.worker import DatasetCache, FeatureCacheSettings, run_training_cell
from harness.runtime import PORTABLE_ENVIRONMENT, describe_device, plan_workers, select_device
from harness.store import ResultStore, check_store

log = logging.getLogger(__name__)


def check_writable(out: Path) -> None:
    """Create ``out`` and prove it is writable, or raise :class:`SweepError` naming it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise SweepError(f"output directory {out} is not writable: {exc.strerror or exc}") from None


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out/.lock`` while the block runs; a second sweep on the same
    directory is refused, naming the process that holds it. The file is removed on the way out.

    Removing a lock file is safe only if a waiting process cannot lock the removed file: so a
    process that got the lock checks that ``out/.lock`` is still the file it locked, and
    starts over when the holder removed it in between. The holder removes the file while it
    still holds the lock.
    """
    path = out / ".lock"
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise SweepError(f"run directory {out} is in use by process {holder}; wait for it to finish "
                             f"or use another --out") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file after we opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        os.close(fd)


@dataclass
class SweepSummary:
    """What a sweep did: cells evaluated now (``cells_written``, of which ``failed``) and before
    (``cells_skipped``); ``cells_total`` and ``failures`` (grouped by error) cover every cell of
    the plan, stored before or now."""

    out: Path
    trainings_run: int
    cells_written: int
    cells_skipped: int
    failed: int
    wall_time_s: float
    cells_total: int = 0
    failures: list[FailureGroup] = field(default_factory=list)

    @property
    def all_failed(self) -> bool:
        """Every cell of the plan failed: the sweep has no result to report."""
        return self.cells_total > 0 and sum(g.count for g in self.failures) == self.cells_total


def check_resumable(out: Path, resume: bool, allow_code_change: bool) -> None:
    """Refuse, before anything is written, to run into a directory that already holds results
    unless ``resume``; and to resume results that another code version computed unless
    ``allow_code_change`` (those rows would otherwise mix silently with this version's)."""
    db = out / "results.sqlite"
    if not db.exists():
        return
    check_store(db, allow_empty=True)
    if db.stat().st_size == 0 or not ResultStore(db, read_only=True).has_schema():
        return
    versions = ResultStore(db, read_only=True).code_versions()
    stored = sum(versions.values())
    if stored and not resume:
        raise SweepError(f"{out} already holds {stored} stored result(s) of an earlier run; pass --resume to continue "
                         f"it (stored cells are skipped) or choose another --out")
    current = code_version()
    others = {v: n for v, n in versions.items() if v != current}
    if others and not allow_code_change:
        listed = ", ".join(f"{v} ({n} rows)" for v, n in sorted(others.items()))
        raise SweepError(f"{out} holds results computed by code version {listed}, but this is code version {current}; "
                         f"pass --allow-code-change to keep them and run only the missing cells with this version, "
                         f"or choose another --out")


def run_sweep(cfg: SweepConfig, out: str | Path, raw_config: dict[str, Any] | None = None, progress: bool = True,
              log: Callable[[str], None] = print, retry_failed: bool = False, resume: bool = False,
              allow_code_change: bool = False) -> SweepSummary:
    """Run every cell of ``cfg`` not yet stored in ``out/results.sqlite``.

    A directory that already holds results is continued only with ``resume`` (stored cells
    are skipped), and only when the same code version computed them, unless
    ``allow_code_change`` (:func:`check_resumable`).
    ``retry_failed`` (implies ``resume``): first delete the stored ``failed`` rows, so those
    cells run again (a failed training is trained again; a failed evaluation of a trained
    model reuses its checkpoint). Without it a failed cell stays failed: it is a result, not
    a gap.
    """
    out = Path(out)
    start = time.perf_counter()
    # Ray first: an unreachable or unfit cluster is refused before anything is written.
    session = open_ray(cfg.run.device) if cfg.run.executor == "ray" else None
    if session is None and ray_address() is not None:
        log(f"note: RAY_ADDRESS is set but run.executor is {cfg.run.executor!r}: the cells run on this machine "
            f"only; set executor = \"ray\" in [run] to use the cluster")
    try:
        check_resumable(out, resume or retry_failed, allow_code_change)
        created = not out.exists()
        check_writable(out)
        if session is not None and session.address is not None:
            try:
                check_shared_storage(out)
            except BaseException:
                if created:
                    shutil.rmtree(out, ignore_errors=True)
                raise
        return _run_locked(cfg, out, raw_config, progress, log, retry_failed, session, start)
    finally:
        if session is not None:
            session.close()


def _run_locked(cfg: SweepConfig, out: Path, raw_config: dict[str, Any] | None, progress: bool,
                log: Callable[[str], None], retry_failed: bool, session: RaySession | None,
                start: float) -> SweepSummary:
    with run_lock(out):
        raw = raw_config if raw_config is not None else cfg.model_dump()
        cfg_hash = config_hash(raw)
        (out / "config.toml").write_text(tomli_w.dumps(tomlable(raw)))
        store = ResultStore(out / "results.sqlite")
        device = _driver_device(cfg.run.device, session)
        cache = DatasetCache(cfg.run.limit, FeatureCacheSettings.of(cfg, out, progress))
        tuned = None
        if cfg.tune is not None:
            from harness.run.tune import run_tuning

            def run_trials(todo: list[tuple[Any, list[Any]]], on_training: Callable[[dict[str, Any]], None]) -> None:
                def keep(row: dict[str, Any]) -> None:
                    store.add_training(row)
                    on_training(row)

                run_cells(cfg, todo, out, cache, device, cfg_hash, keep, lambda *_: None, session)

            tuned = run_tuning(cfg, store, run_trials, say=log)
        plan = make_plan(cfg, tuned)
        if retry_failed:
            log(f"retrying {store.delete_failed()} failed cell(s)")
        stored = store.stored_keys()
        log(plan.describe(stored))
        store.add_run(config_hash({"config": cfg_hash, "at": now_utc()}), raw, cfg_hash,
                      {"code_version": code_version(), "packages": package_versions(),
                       "device": describe_device(device), "arithmetic": cfg.run.arithmetic}, now_utc())
        todo = [(t, [c for c in plan.evaluations[t.key] if c.key not in stored]) for t in plan.trainings]
        todo = [(t, cells) for t, cells in todo if cells]
        n_cells = sum(len(c) for _, c in todo)
        os.environ.update(worker_environment())  # spawned workers see the plugins this process sees
        bar = _progress(n_cells, progress)
        failed = 0

        def on_result(cell: EvalCell, row: dict[str, Any], preds: dict[str, Any] | None) -> None:
            nonlocal failed
            store.add_result(row, preds)
            failed += row["status"] != "ok"
            bar.set_postfix_str(f"{cell.training.label} seed={cell.training.seed} {row['corruption']}@{cell.severity}"
                                f" on {row.get('node') or '?'}")
            bar.update(1)

        run_cells(cfg, todo, out, cache, device, cfg_hash, store.add_training, on_result, session)
        bar.close()
        from harness.run.post_run import run_post_run

        run_post_run(cfg, plan.trainings, cache, store, out, device, log)
        keys = {c.key for cells in plan.evaluations.values() for c in cells}
        outcomes = store.outcomes()
        failures = group_failures(outcomes[outcomes["cell_key"].isin(keys)])
    return SweepSummary(out, len(todo), n_cells, plan.n_evaluations - n_cells, failed, time.perf_counter() - start,
                        plan.n_evaluations, failures)


def run_cells(cfg: SweepConfig, todo: list[tuple[Any, list[EvalCell]]], out: Path, cache: DatasetCache, device: Any,
              cfg_hash: str, on_training: Callable[[dict[str, Any]], None],
              on_result: Callable[[EvalCell, dict[str, Any], Any], None], session: RaySession | None = None) -> None:
    """Run the training cells of ``todo`` (each with its evaluation cells) on ``cfg``'s executor;
    every record comes back through ``on_training`` / ``on_result`` in this process.
    ``session``: the Ray driver :func:`open_ray` opened (executor ``"ray"`` only)."""
    if not todo:
        return
    portable = cfg.run.arithmetic == "portable"
    env = dict(PORTABLE_ENVIRONMENT) if portable else None
    if cfg.run.executor == "ray":
        from harness.run.executors import run_on_ray

        if session is None:
            raise SweepError("executor 'ray' needs a Ray session: run_sweep opens one with open_ray()")
        run_on_ray(todo, out, cfg.run.device, cfg_hash, on_training, on_result, session, env=env,
                   features=cache.features)
    elif cfg.run.executor == "processes" or portable:
        from harness.run.executors import default_workers, run_on_processes

        # CPU: one worker per core; one GPU: a few workers share it (see plan_workers). The
        # portable mode needs processes started with its environment (the local executor gets
        # one such process) and one thread each.
        gpus = max(torch.cuda.device_count(), 1) if device.type == "cuda" else 1
        requested = 1 if cfg.run.executor == "local" else cfg.run.workers
        plan = plan_workers(device, default_workers(), len(todo), requested, gpus=gpus)
        run_on_processes(todo, out, cfg.run.device, cfg_hash, on_training, on_result, plan.workers,
                         1 if portable else plan.threads, env=env, features=cache.features)
    else:
        for t, cells in todo:
            run_training_cell(t, cells, cache, out, device, cfg_hash, on_training, on_result)


def _driver_device(name: str, session: RaySession | None) -> torch.device:
    """The device of the driver's own work (provenance, post-run profiles). With Ray the cells
    run on the cluster's devices, which the driver may lack: then the driver uses its CPU."""
    if session is not None and name.startswith("cuda"):
        try:
            return select_device(name)
        except ValueError:
            return torch.device("cpu")
    return select_device(name)


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="cells", unit="cell", disable=not enabled, dynamic_ncols=True)


def tomlable(obj: Any) -> Any:
    """Drop None values (TOML has no null) recursively."""
    if isinstance(obj, dict):
        return {k: tomlable(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [tomlable(v) for v in obj if v is not None]
    return obj
