"""Joining Ray for the ``ray`` executor, with every check done before the run writes anything.

:func:`open_ray` decides where the training cells will run and proves that they can:

1. *where*: the cluster named by ``RAY_ADDRESS`` (``HOST:PORT`` of the head's GCS, or
   ``ray://HOST:PORT`` for Ray Client; Ray sets it for the driver of a job submitted with
   ``ray job submit``), else a new local instance that listens on 127.0.0.1 only;
2. *reachable*: a TCP connection to that address within :data:`CONNECT_TIMEOUT_S` (Ray itself
   waits 30 s for ``ray://`` and minutes for a GCS address, then fails with a traceback);
3. *same versions*: Ray refuses a driver whose Ray or Python version differs from the cluster's;
4. *enough resources*: every training cell asks for one CPU, or one GPU when ``run.device``
   asks for CUDA; a cluster without such a node would leave the cells pending forever.

Code: a job's driver runs on the code its job shipped (``--working-dir``), and so do its tasks.
A driver that joins a cluster by itself (``RAY_ADDRESS``, Ray Client) from a source tree ships
that tree the same way; from an installed package it ships nothing, so the nodes need the same
version installed. Either way every task reports the driver's :func:`code_version`.

Each failure is a :class:`ClusterError` whose message is one line naming the address; the
command line prints it and exits with status 2. :func:`check_shared_storage` runs once the
run directory exists: checkpoints are written by the workers, so every node must see it.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.provenance import CODE_VERSION_ENV, code_version, source_root
from harness.run.plan import SweepError

CONNECT_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 120.0
# In a job's driver Ray sets this (the job's runtime environment): the job shipped the code.
JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
# A local instance: Ray's switch for single-machine clusters keeps the node address at 127.0.0.1
# (otherwise Ray takes the machine's outward address, and its servers listen on every
# interface); Ray reads it when it is imported, so it is set before the import. Usage
# statistics stay off: a benchmark run has no business reporting anywhere.
LOCAL_ONLY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


class ClusterError(SweepError):
    """Ray cannot run this sweep: unreachable, versions differ, resources or storage missing."""


@dataclass(frozen=True)
class RaySession:
    """A connected Ray driver and what each training-cell task asks for."""

    address: str | None  # None: a local instance
    started_here: bool
    num_cpus: float
    num_gpus: float

    @property
    def where(self) -> str:
        return f"the Ray cluster at {self.address}" if self.address else "the local Ray instance"

    def missing_resources(self) -> str | None:
        """None while some node can take a training cell, else why none can (one line)."""
        import ray

        total = ray.cluster_resources()
        if self.num_gpus and total.get("GPU", 0) < self.num_gpus:
            return f"{self.where} has no GPU left (it has {_describe(total)})"
        if self.num_cpus and total.get("CPU", 0) < self.num_cpus:
            return f"{self.where} has no CPU left (it has {_describe(total)})"
        return None

    def close(self) -> None:
        if self.started_here:
            import ray

            ray.shutdown()


def ray_address(environ: dict[str, str] | None = None) -> str | None:
    """The cluster to join: ``RAY_ADDRESS`` when set (and not ``local``), else None."""
    value = (os.environ if environ is None else environ).get("RAY_ADDRESS", "").strip()
    return value if value and value != "local" else None


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT``, ``ray://HOST:PORT`` or ``[IPv6]:PORT``; None for ``auto``
    (Ray's "the cluster started on this machine"). ClusterError for anything else."""
    if address == "auto":
        return None
    m = re.fullmatch(r"(?:ray://)?(\[[^\]]+\]|[^:/\s\[\]]+):(\d{1,5})/?", address)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise ClusterError(f"RAY_ADDRESS={address!r} is not an address: expected HOST:PORT (the head's GCS, "
                           f"e.g. 10.0.0.5:6379) or ray://HOST:PORT (Ray Client, e.g. ray://10.0.0.5:10001)")
    return m.group(1).strip("[]"), int(m.group(2))


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A TCP connection to ``address`` (as written: no name rewriting) opens within
    ``timeout_s``, or ClusterError naming the address."""
    target = host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as exc:
        reason = f"no answer within {timeout_s:g} s" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ClusterError(f"cannot reach the Ray cluster at {address} (RAY_ADDRESS): {reason}; is its head "
                           f"running ('ray start --head') and is the address right?") from None


def _version_mismatch(exc: BaseException, address: str) -> ClusterError | None:
    """Ray's multi-line "Version mismatch" error as one line; None for any other error."""
    text = str(exc)
    if "Version mismatch" not in text:
        return None
    found = re.findall(r"Ray: (\S+)\s+Python: (\S+)", text)
    if len(found) == 2:
        (cluster_ray, cluster_py), (our_ray, our_py) = found
        detail = (f"the cluster runs Ray {cluster_ray} on Python {cluster_py}, this driver Ray {our_ray} "
                  f"on Python {our_py}")
    else:
        detail = " ".join(text.split())
    return ClusterError(f"the Ray cluster at {address} refuses this driver: {detail}; install the cluster's "
                        f"versions here, or submit the run with 'ray job submit' (its driver runs on the head)")


def _runtime_env(address: str | None) -> dict[str, Any]:
    env: dict[str, Any] = {"env_vars": {CODE_VERSION_ENV: code_version()}}
    root = source_root()
    if address is not None and JOB_ENV not in os.environ and root is not None:
        env["working_dir"] = str(root)  # .gitignore and .rayignore apply; Ray never ships .git or .venv
    return env


def open_ray(device_name: str) -> RaySession:
    """Join the cluster of ``RAY_ADDRESS`` (or start a local instance) and check it; see the module doc."""
    address = ray_address()
    if address is None and "ray" not in sys.modules:
        for key, value in LOCAL_ONLY_ENV.items():
            os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError:
        raise ClusterError("executor 'ray' needs the ray package: pip install 'mcer-bench[ray]'") from None
    if address is not None:
        check_reachable(address)
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {} if address is not None else {"include_dashboard": False}
        try:
            ray.init(address=address, runtime_env=_runtime_env(address), log_to_driver=False,
                     configure_logging=False, **options)
        except (RuntimeError, ConnectionError) as exc:
            raise (_version_mismatch(exc, address or "local")
                   or ClusterError(f"cannot join the Ray cluster at {address or 'local'}: "
                                   f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")) from None
    try:
        return _with_resources(address, device_name, started_here)
    except BaseException:
        if started_here:
            ray.shutdown()
        raise


def _with_resources(address: str | None, device_name: str, started_here: bool) -> RaySession:
    """The session, once the cluster is known to have a node for a training cell."""
    import ray

    total = ray.cluster_resources()
    gpus = float(total.get("GPU", 0))
    wants_cuda = str(device_name).startswith("cuda")
    use_gpu = wants_cuda or (device_name in ("auto", None) and gpus >= 1)
    session = RaySession(address, started_here, 0.0 if use_gpu else 1.0, 1.0 if use_gpu else 0.0)
    missing = session.missing_resources()
    if missing is not None:
        missing = missing.replace(" left ", " ")
        if use_gpu:
            raise ClusterError(f"{missing}, but run.device = {device_name!r} asks one for each training cell; "
                               f"add GPU nodes, or use device 'auto' or 'cpu'")
        raise ClusterError(f"{missing}, and each training cell needs one; add nodes with --num-cpus >= 1")
    return session


def _describe(resources: dict[str, float]) -> str:
    """``CPU 2, GPU 0`` and any custom resources; node markers and memory left out."""
    shown = {k: v for k, v in resources.items()
             if not k.startswith(("node:", "memory", "object_store_memory", "accelerator_type:"))}
    shown.setdefault("GPU", 0.0)
    return ", ".join(f"{k} {v:g}" for k, v in sorted(shown.items()))


def _read_probe(path: str, token: str) -> tuple[str, bool]:
    from harness.runtime import describe_node

    try:
        seen = Path(path).read_text() == token
    except OSError:
        seen = False
    return describe_node(), seen


def check_shared_storage(out: Path, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Every alive node of the connected cluster reads a probe file written under ``out``.

    Raises ClusterError naming ``out`` and the nodes that cannot: their checkpoints would be
    lost, and a retried cell trained again. The probe is removed in any case.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = secrets.token_hex(8)
    probe = out / f".node-probe-{token}"
    probe.write_text(token)
    try:
        read = ray.remote(num_cpus=0, max_retries=1)(_read_probe)
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        refs = [read.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
                .remote(str(probe.resolve()), token) for node in nodes]
        try:
            answers = ray.get(refs, timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise ClusterError(f"could not check that every Ray node sees --out {out}: not all of the {len(nodes)} "
                               f"node(s) answered within {timeout_s:g} s") from None
    finally:
        probe.unlink(missing_ok=True)
    blind = [node for node, seen in answers if not seen]
    if blind:
        raise ClusterError(f"--out {out} is not on storage every Ray node sees: {len(blind)} of {len(answers)} "
                           f"node(s) cannot read it ({', '.join(blind)}); put --out on a filesystem all nodes "
                           f"mount at the same path")
