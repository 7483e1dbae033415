"""Atomic writes and the removal of stale temporary files (issue #16, items 1 and 3)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from precipdiff.atomic import atomic_write, is_stale, remove_stale_under
from precipdiff.hooks import InterruptHooks


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_atomic_write_replaces_the_target_and_leaves_no_tmp(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_failed_write_keeps_the_old_file_and_removes_tmp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def half_write(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_write, hidden=True)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_stale_means_dead_process_or_older_than_a_day(tmp_path):
    dead = tmp_path / f"radar.nc.tmp-{dead_pid()}"
    mine = tmp_path / f".latest.pt.tmp-{os.getpid()}"
    old_alive = tmp_path / f"satellite.nc.tmp-{os.getppid()}"
    not_tmp = tmp_path / "radar.nc"
    for path in (dead, mine, old_alive, not_tmp):
        path.write_text("x")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old_alive, (two_days_ago, two_days_ago))
    assert [is_stale(p) for p in (dead, mine, old_alive, not_tmp)] == [True, False, True, False]


def test_a_later_run_removes_stale_tmp_files_but_not_a_running_process_ones(tmp_path):
    """The start of a run (``before_pipeline_run``) cleans ``data/`` below the project."""
    data = tmp_path / "data" / "03_primary"
    data.mkdir(parents=True)
    stale = data / f"radar.nc.tmp-{dead_pid()}"
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        concurrent = data / f"satellite.nc.tmp-{running.pid}"
        for path in (stale, concurrent):
            path.write_text("x")
        hooks = InterruptHooks()
        hooks.after_context_created(context=type("Context", (), {"project_path": tmp_path})())
        hooks.before_pipeline_run()
        hooks.after_pipeline_run()
        assert not stale.exists()
        assert concurrent.exists()
    finally:
        running.kill()
        running.wait()
    assert remove_stale_under(tmp_path / "data") == [concurrent]  # its process has gone now
