"""A real multi-process Ray cluster for tests, confined to loopback.

Ray replaces 127.0.0.1 by the machine's outward address wherever it meets it (``ray start
--node-ip-address``, ``--address``, ``ray.init(address=...)``), and a worker node cannot be
started with the one switch that prevents this. So the cluster lives in a private network
namespace whose only interface is ``lo``: there Ray finds no outward address, falls back to
127.0.0.1, and every one of its servers binds 127.0.0.1. Each command of the cluster (``ray
start``, ``ray job submit``, a driver) joins that namespace with ``nsenter``.

Each node is started in a session of its own, which then names all of its processes (Ray
gives every worker process its own process group, not its own session), so a node can be
killed whole - and is, at the end, whatever happened. ``ray stop`` is never used: it stops
every Ray process on the machine, other people's included.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
HEAD_PORT, DASHBOARD_PORT, CLIENT_PORT = 6379, 8265, 10001  # Ray's defaults: the namespace is ours alone
# Node death noticed after ~1.5 s instead of ~15 s.
FAST_HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
               "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}
_LO_UP = ("import fcntl, signal, socket, struct\n"
          "s = socket.socket()\n"
          "flags = struct.unpack('16sH', fcntl.ioctl(s, 0x8913, struct.pack('16sH', b'lo', 0)))[1]\n"  # SIOCGIFFLAGS
          "fcntl.ioctl(s, 0x8914, struct.pack('16sH', b'lo', flags | 1))\n"  # SIOCSIFFLAGS |= IFF_UP
          "print('up', flush=True)\n"
          "signal.pause()\n")


def why_unavailable() -> str | None:
    """Why a loopback cluster cannot run here (None when it can)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (pip install 'mcer-bench[ray]')"
    if not sys.platform.startswith("linux"):
        return "needs Linux network namespaces"
    for tool in ("unshare", "nsenter", "ss"):
        if shutil.which(tool) is None:
            return f"needs the {tool!r} command (util-linux / iproute2)"
    if not (BIN / "ray").exists():
        return f"no 'ray' command beside {sys.executable}"
    try:
        with Namespace():
            pass
    except (OSError, RuntimeError) as exc:
        return f"cannot create a private network namespace here: {exc}"
    return None


def session_pids(sid: int) -> list[int]:
    """Pids of every process of session ``sid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def kill_session(sid: int, grace_s: float = 3.0) -> None:
    """SIGTERM every process of session ``sid``; SIGKILL what remains after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if sig == signal.SIGTERM and grace_s <= 0:
            continue
        for pid in session_pids(sid):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + max(grace_s, 1.0)
        while session_pids(sid) and time.monotonic() < deadline:
            time.sleep(0.05)


def process_title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


class Namespace:
    """A private network namespace with ``lo`` up, kept alive by a holder process."""

    def __enter__(self) -> Namespace:
        user_ns = os.geteuid() != 0
        argv = ["unshare", "--net", *(["--map-root-user"] if user_ns else []), "--", sys.executable, "-c", _LO_UP]
        self.holder = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       start_new_session=True)
        line = self.holder.stdout.readline().strip()
        if line != "up":
            self.holder.kill()
            err = self.holder.communicate()[1].strip().splitlines()
            raise RuntimeError(f"{' '.join(argv[:3])}: {err[-1] if err else 'no namespace'}")
        self.prefix = ["nsenter", f"--target={self.holder.pid}", "--net",
                       *(["--user", "--preserve-credentials"] if user_ns else []), "--"]
        return self

    def cmd(self, argv: list[str]) -> list[str]:
        return [*self.prefix, *argv]

    def __exit__(self, *exc: object) -> None:
        self.holder.kill()
        self.holder.wait()


class LoopbackCluster:
    """A head and worker nodes started with ``ray start``, each its own process tree.

    ``env`` is the environment every command of the cluster gets: the venv's bin first on
    PATH (the job entrypoint ``python`` is looked up there), usage stats off, and token
    authentication with a token of this cluster's own (set explicitly: with the mode unset,
    Ray turns token auth on by itself when ``~/.ray/auth_token`` happens to exist).
    """

    def __init__(self, cpus_per_node: int = 1) -> None:
        self.cpus = cpus_per_node
        self.tmp = Path(tempfile.mkdtemp(prefix="rl", dir="/tmp"))  # short: unix socket paths <= 107 bytes
        self.env = {**self.base_env(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        self.sessions: dict[str, int] = {}
        self.ns = Namespace()

    @staticmethod
    def base_env() -> dict[str, str]:
        """This environment without Ray or fault settings, the venv first on PATH, one thread."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("RAY_") and k not in ("MCER_BENCH_FAULT", "MCER_BENCH_CODE_VERSION")}
        env.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", RAY_USAGE_STATS_ENABLED="0",
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        return env

    address = f"127.0.0.1:{HEAD_PORT}"
    client_address = f"ray://127.0.0.1:{CLIENT_PORT}"
    dashboard = f"http://127.0.0.1:{DASHBOARD_PORT}"

    def __enter__(self) -> LoopbackCluster:
        self.ns.__enter__()
        try:
            self.start_node("head", ["--head", f"--port={HEAD_PORT}", "--dashboard-host=127.0.0.1",
                                     f"--dashboard-port={DASHBOARD_PORT}", f"--ray-client-server-port={CLIENT_PORT}",
                                     f"--system-config={json.dumps(FAST_HEALTH)}"])
        except BaseException:
            self.__exit__()
            raise
        return self

    def start_node(self, name: str, extra: list[str], private_dir: Path | None = None) -> int:
        """``ray start`` a node called ``name`` in its own session; returns the session id.

        ``private_dir``: the node sees an empty tmpfs there instead of the directory (its own
        mount namespace), like a node that does not mount a shared filesystem.
        """
        args = ["--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}", "--num-gpus=0",
                "--object-store-memory=100000000", f"--temp-dir={self.tmp / name}", "--disable-usage-stats", *extra]
        argv = [str(BIN / "ray"), "start", *args]
        if private_dir is not None:
            argv = ["unshare", "--mount", "--propagation=private", "--", "sh", "-c",
                    'mount -t tmpfs tmpfs "$0" && exec "$@"', str(private_dir), *argv]
        log = self.tmp / f"{name}.log"
        with open(log, "w") as f:
            proc = subprocess.Popen(self.ns.cmd(argv), stdout=f, stderr=subprocess.STDOUT, env=self.env,
                                    start_new_session=True)
            self.sessions[name] = proc.pid
            rc = proc.wait(timeout=240)
        if rc:
            raise RuntimeError(f"ray start of node {name!r} failed ({rc}): {log.read_text()[-1500:]}")
        return proc.pid

    def add_worker(self, name: str = "worker", private_dir: Path | None = None) -> int:
        """A worker node with the custom resource ``{name: 1}``; returns its session id."""
        port = 52366 + len(self.sessions)  # the agent's HTTP port is fixed by default: one per node
        return self.start_node(name, [f"--address={self.address}", f"--dashboard-agent-listen-port={port}",
                                      f"--resources={json.dumps({name: 1})}"], private_dir=private_dir)

    def kill_node(self, name: str) -> None:
        kill_session(self.sessions[name], grace_s=0)

    def kill_when_running(self, name: str, task: str, timeout_s: float, delay_s: float = 1.0) -> str:
        """SIGKILL node ``name`` when one of its processes, seen running ``task``, still runs it
        ``delay_s`` later.

        A process that went idle within ``delay_s`` does not count (killing then would find the
        node idle): the wait goes on for the next one."""
        sid = self.sessions[name]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for pid in session_pids(sid):
                title = process_title(pid)
                if title.startswith(f"ray::{task}"):
                    time.sleep(delay_s)
                    if process_title(pid).startswith(f"ray::{task}"):
                        self.kill_node(name)
                        return title
            time.sleep(0.05)
        raise TimeoutError(f"node {name!r} never ran a {task!r} task within {timeout_s:g} s")

    def run(self, argv: list[str], timeout_s: float, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
        """Run ``argv`` inside the namespace with the cluster's environment (+ ``env``)."""
        return subprocess.run(self.ns.cmd(argv), capture_output=True, text=True, timeout=timeout_s, cwd=cwd,
                              env={**self.env, **env})

    def popen(self, argv: list[str], cwd: Path | None = None, **env: str) -> subprocess.Popen:
        """Start ``argv`` inside the namespace; stdout and stderr together on ``stdout``."""
        return subprocess.Popen(self.ns.cmd(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=cwd, env={**self.env, **env}, start_new_session=True)

    def foreign_sockets(self) -> list[str]:
        """Sockets of the namespace (TCP and UDP) with a local or peer address off loopback."""
        out = subprocess.run(self.ns.cmd(["ss", "-tuanH"]), capture_output=True, text=True, check=True).stdout
        loop = ("127.0.0.1:", "[::ffff:127.0.0.1]:", "[::1]:")
        return [line for line in out.splitlines()
                if not (line.split()[4].startswith(loop)
                        and line.split()[5].startswith((*loop, "*:", "0.0.0.0:*", "[::]:*")))]

    def __exit__(self, *exc: object) -> None:
        for sid in reversed(list(self.sessions.values())):
            kill_session(sid)
        self.ns.__exit__()
        left = [p for sid in self.sessions.values() for p in session_pids(sid)]
        shutil.rmtree(self.tmp, ignore_errors=True)
        if left:
            raise RuntimeError(f"processes of the test cluster survived: {left}")
