"""The run lock: no stale ``.lock`` after a run, and still one sweep per directory."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from tiny_sweeps import tiny_sweep_toml

from harness.run.cli import main
from harness.run.driver import run_lock
from harness.run.plan import SweepError

TINY = tiny_sweep_toml(severity=None)

HOLDER = textwrap.dedent("""
    import sys, pathlib
    from harness.run.driver import run_lock
    with run_lock(pathlib.Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.readline()   # hold the lock until the test writes a line
""")


def test_no_lock_file_is_left_after_a_run(tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--no-report"]) == 0
    assert not (out / ".lock").exists()
    assert (out / "results.sqlite").is_file()


def test_no_lock_file_is_left_when_the_block_fails(tmp_path):
    with pytest.raises(RuntimeError, match="inside"):
        with run_lock(tmp_path):
            assert (tmp_path / ".lock").is_file()
            raise RuntimeError("inside")
    assert not (tmp_path / ".lock").exists()


def test_a_second_process_is_refused_naming_the_holder_then_runs(tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["run", str(cfg), "--out", str(out), "--quiet", "--no-report"]) == 2
        assert f"run directory {out} is in use by process {holder.pid}" in capsys.readouterr().err
        assert not (out / "results.sqlite").exists()
    finally:
        holder.communicate("done\n", timeout=60)
    assert holder.returncode == 0 and not (out / ".lock").exists()
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--no-report"]) == 0


def test_a_lock_file_removed_between_open_and_lock_is_not_trusted(tmp_path, monkeypatch):
    """The holder removes .lock when it finishes; a process that opened the old file just before
    must not run on that removed file (a third process could then lock a new one): it starts
    over on the file that is at the path."""
    import fcntl

    from harness.run import driver

    calls = []
    real_flock = fcntl.flock

    def flock_after_the_holder_left(fd, op):
        if not calls:
            (tmp_path / ".lock").unlink()  # what the previous holder does on its way out
        calls.append(fd)
        return real_flock(fd, op)

    monkeypatch.setattr(driver.fcntl, "flock", flock_after_the_holder_left)
    with run_lock(tmp_path):
        assert len(calls) == 2  # the first file was dropped, the new one locked
        assert (tmp_path / ".lock").is_file()
        monkeypatch.setattr(driver.fcntl, "flock", real_flock)
        with pytest.raises(SweepError, match="is in use by process"):
            with run_lock(tmp_path):  # the file at the path is the locked one
                pass
    assert not (tmp_path / ".lock").exists()
