"""Run a long-lived server (``make viz``, ``make mlflow-ui``) so that Ctrl-C or SIGTERM stops it with
all its children.

``kedro viz run`` serves from a ``multiprocessing`` child and ``mlflow ui`` from uvicorn workers:
stopping only the command's own process (what ``make`` does on SIGTERM) left them serving the port.
Here the command runs in a process group of its own; SIGINT, SIGTERM or SIGHUP to this process (or
its exit) sends SIGTERM to that whole group, then SIGKILL to whatever is still there after
``GRACE_S`` seconds::

    python -m precipdiff.serve kedro viz run --no-browser --port 4141
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

GRACE_S = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stop_group(pgid: int, grace_s: float = GRACE_S) -> None:
    """SIGTERM to process group ``pgid``, SIGKILL to it if any member is left after ``grace_s``."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str]) -> int:
    """Run ``argv`` in its own process group until it exits or this process is told to stop."""
    if not argv:
        print("usage: python -m precipdiff.serve COMMAND [ARGS...]", file=sys.stderr)
        return 2
    child = subprocess.Popen(argv, start_new_session=True)
    stopping = []

    def stop(signum, _frame):
        stopping.append(signum)
        stop_group(child.pid)

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    try:
        status = child.wait()
    finally:
        stop_group(child.pid)  # children the command left behind when it exited by itself
    return 128 + stopping[0] if stopping else status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
