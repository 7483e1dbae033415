"""A process killed (SIGKILL, by PID) while writing any kind of file leaves the previous file or none
(issue #24, item 4): the HTML report, JSON reports, plotly figures, CSV tables and the DDP hand-off
files all go through :func:`precipdiff.atomic.atomic_write`.

The child (``tests/datasets/write_child.py``) pauses at the ``publish:<file>`` point of
``tests/paused_run.py``, its temporary file half-written; the test kills it there, checks the
target, then writes again in-process: the dead process's temporary file is removed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.datasets.write_child import FILES, write
from tests.paused_run import signal_at_pause

CHILD = Path(__file__).with_name("write_child.py")


def killed_while_writing(kind: str, folder: Path, workdir: Path) -> Path:
    """Start the child writing ``new`` into ``folder``, kill it in the publication; the half-written temporary file."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    with open(workdir / "log", "w") as log:
        child = subprocess.Popen([sys.executable, str(CHILD), kind, str(folder), str(workdir)], env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
    half = signal_at_pause(child, workdir, signal.SIGKILL, timeout=120)
    assert child.returncode == -signal.SIGKILL
    return half


@pytest.mark.parametrize("kind", sorted(FILES))
@pytest.mark.parametrize("previous", [True, False], ids=["previous_file", "no_file"])
def test_a_kill_during_the_write_leaves_the_previous_file_or_none(tmp_path, kind, previous):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / FILES[kind]
    before = write(kind, folder, "old").read_bytes() if previous else None
    half = killed_while_writing(kind, folder, tmp_path / "work")

    assert half is not None and half.parent == folder and half.exists()  # the child really was mid-write
    assert half.stat().st_size > 0 and half.read_bytes() != before
    if previous:
        assert target.read_bytes() == before, f"{target.name}: not the previous file after the kill"
    else:
        assert not target.exists(), f"{target.name}: a file appeared although its write was killed"
    write(kind, folder, "new")  # the next write of the same file removes the dead process's leftover
    assert not half.exists() and target.stat().st_size > 0
