"""The fault-injection suite: every test here is marked ``faults`` (run alone: ``pytest -m faults``).

At the end of a session that ran any of it, one line sums up what the suite did; the
closing note of issue #8 quotes it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

# hypothesis keeps caches in ./.hypothesis; keep them out of the repository
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="mcer-bench-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, True)

from ._helpers import TALLY, cli_run, result_rows, write_sweep  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in item.nodeid.replace("\\", "/") or item.nodeid.startswith("faults/"):
            assert item.get_closest_marker("faults"), f"{item.nodeid} lacks @pytest.mark.faults"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY:
        return
    terminalreporter.write_line(
        f"fault suite: {TALLY['kill points survived']} kill points survived, {TALLY['fuzzed inputs']} fuzzed inputs, "
        f"{TALLY['malicious files refused']} malicious files refused, {TALLY['rows lost']} rows lost")


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory):
    """The fault sweep run once, uninterrupted, by the CLI: the rows every attacked run must end with."""
    root = tmp_path_factory.mktemp("reference")
    cfg = write_sweep(root / "sweep.toml")
    done = cli_run(cfg, root / "run")
    assert done.returncode == 0, done.stderr
    return result_rows(root / "run" / "results.sqlite")
