"""Run code in a fresh interpreter with every socket connection refused (used by test_no_network
and the encoder tests): what it tried to reach comes back with what it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REFUSE_SOCKETS = r"""
import json, socket, sys
attempts = []

def refuse(*args, **kwargs):
    attempts.append(repr(args[:1]))
    raise OSError("network disabled by tests/no_network.py")

class NoNetworkSocket(socket.socket):
    def connect(self, address):
        refuse(address)

    def connect_ex(self, address):
        refuse(address)

socket.socket = NoNetworkSocket
socket.create_connection = refuse
socket.getaddrinfo = refuse
"""


def run_without_network(code: str, timeout: float = 300, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` after :data:`REFUSE_SOCKETS`; ``code`` sets ``result`` (a JSON-able dict).
    Returns ``result`` plus ``"attempts"`` (every refused connection) and ``"stderr"``; fails
    the calling test with the child's stderr when it exits non-zero. ``env``: the child's whole
    environment (default: this process's)."""
    script = REFUSE_SOCKETS + code + "\nprint(json.dumps({'attempts': attempts, **result}))\n"
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = str(ROOT) + os.pathsep + child_env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=child_env, capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    return {**json.loads(res.stdout.strip().splitlines()[-1]), "stderr": res.stderr}
