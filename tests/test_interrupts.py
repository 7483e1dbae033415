"""SIGINT sent by PID to a child running a small Kedro pipeline (``tests/interrupt_child.py``), issue #16.

Each test waits for the child's ``ready`` marker, sends ``os.kill(pid, SIGINT)`` and asserts a
prompt, non-zero exit with no temporary or half-written file left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from precipdiff import interrupts

CHILD = Path(__file__).with_name("interrupt_child.py")
SRC = Path(__file__).parents[1] / "src"


def start(scenario: str, workdir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(CHILD), scenario, str(workdir)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            # SIGINT at its default disposition whatever the test runner's is
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def interrupt_when_ready(child: subprocess.Popen, workdir: Path, timeout: float = 15.0) -> tuple[int, float, str]:
    """SIGINT once ``workdir/ready`` exists; returns (exit status, seconds from SIGINT to exit, output)."""
    deadline = time.monotonic() + timeout
    while not (workdir / "ready").exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"child never became ready (status {child.poll()}):\n{child.communicate()[0]}")
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGINT)
    sent = time.monotonic()
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        pytest.fail(f"child still running {timeout:.0f} s after SIGINT (hung):\n{child.communicate()[0]}")
    return child.returncode, time.monotonic() - sent, output


def test_sigint_inside_netcdf_save_exits_without_tmp_or_partial_file(tmp_path):
    rc, seconds, output = interrupt_when_ready(start("save", tmp_path), tmp_path)
    assert rc != 0, output
    assert seconds < 10.0, output  # the 2 s pause in the lock, then the stop
    assert "KeyboardInterrupt" in output
    assert list((tmp_path / "out").iterdir()) == []  # neither field.nc nor field.nc.tmp-<pid>
    assert not (tmp_path / "second_node").exists()


def test_swallowed_sigint_still_fails_the_run(tmp_path):
    rc, seconds, output = interrupt_when_ready(start("swallow", tmp_path), tmp_path)
    assert rc != 0, output
    assert seconds < 10.0, output
    assert not (tmp_path / "second_node").exists(), "the run went on after the interrupt"


def test_deferred_holds_sigint_until_the_block_ends():
    steps = []
    with pytest.raises(KeyboardInterrupt, match="during a file write"):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler has run by now, and not raised
            steps.append("block finished")
    assert steps == ["block finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    assert not interrupts.pending()  # outside a run, nothing carries over


def test_check_raises_once_an_interrupt_was_recorded():
    assert interrupts.install()
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        with pytest.raises(KeyboardInterrupt, match="during the run"):  # swallowed above, raised again
            interrupts.check()
        interrupts.reset()
        interrupts.check()  # a new run starts clean
    finally:
        interrupts.uninstall()
        interrupts.reset()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ignored_sigint_is_left_alone():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert not interrupts.install()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_project_registers_the_interrupt_hooks():
    from precipdiff.hooks import InterruptHooks
    from precipdiff.settings import HOOKS

    assert any(isinstance(hook, InterruptHooks) for hook in HOOKS)
