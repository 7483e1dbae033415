"""Run a long-lived server (``make viz``, ``make mlflow-ui``) so that Ctrl-C or SIGTERM stops it with
all its children.

``kedro viz run`` serves from a ``multiprocessing`` child and ``mlflow ui`` from uvicorn workers:
stopping only the command's own process (what ``make`` does on SIGTERM) left them serving the port.
Here the command runs in a process group of its own; SIGINT, SIGTERM or SIGHUP to this process (or
its exit) sends SIGTERM to that whole group, then SIGKILL to whatever is still there after
``GRACE_S`` seconds::

    python -m precipdiff.serve kedro viz run --no-browser --port 4141

``python -m precipdiff.serve --mlflow-url mlflow.db 5000`` prints the address of the MLflow UI that
opens the ``precipdiff`` experiment on its runs: MLflow 3's UI starts in its "GenAI" mode (an
overview of traces) unless the address asks for ``workflowType=machine_learning``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
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


def mlflow_runs_url(db: str | os.PathLike, port: int | str, experiment: str = "precipdiff",
                    host: str = "127.0.0.1") -> str:
    """The MLflow UI address of ``experiment``'s runs in the SQLite store ``db`` (the experiment list
    when the store or the experiment does not exist yet), in the UI's model-training mode."""
    mode = "?workflowType=machine_learning"
    try:
        with sqlite3.connect(f"file:{os.fspath(db)}?mode=ro", uri=True) as store:
            row = store.execute("SELECT experiment_id FROM experiments WHERE name = ? AND lifecycle_stage = 'active'",
                                (experiment,)).fetchone()
    except sqlite3.Error:
        row = None
    path = f"experiments/{row[0]}" if row else "experiments"
    return f"http://{host}:{port}/#/{path}{mode}"


def main(argv: list[str]) -> int:
    """Run ``argv`` in its own process group until it exits or this process is told to stop."""
    if len(argv) == 3 and argv[0] == "--mlflow-url":
        print(f"MLflow UI (the precipdiff runs): {mlflow_runs_url(argv[1], argv[2])}", flush=True)
        return 0
    if not argv:
        print("usage: python -m precipdiff.serve COMMAND [ARGS...] | --mlflow-url DB PORT", file=sys.stderr)
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
