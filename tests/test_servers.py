"""``make viz`` and ``make mlflow-ui`` stop with all their children (issue #24, item 5).

Each test starts the make target on a free port, waits until it serves, records every descendant
process of ``make`` by PID, stops it as a user would (SIGTERM to ``make``; Ctrl-C = SIGINT to the
terminal's process group, ``make``'s), and checks that none of those PIDs is left and the port is free.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from precipdiff.serve import mlflow_runs_url

ROOT = Path(__file__).resolve().parents[1]


def free_port(low: int = 20000, high: int = 49151) -> int:
    """A free TCP port in [low, high]. Not the OS's pick: Linux hands out ephemeral ports up to 60999,
    and kedro-viz refuses any port above 49151 ("Cannot allocate an open TCP port"), so a port left to
    the OS failed ``make viz`` about two runs in five."""
    for port in random.Random(os.getpid()).sample(range(low, high + 1), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port in {low}..{high}")


def descendants(pid: int) -> set[int]:
    """PIDs of every live descendant of ``pid`` (from ``/proc/<pid>/stat``'s parent field)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    out, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - out
        out |= frontier
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited


def serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@pytest.mark.parametrize(("target", "stop"), [("viz", "SIGTERM"), ("mlflow-ui", "Ctrl-C")])
def test_make_server_targets_stop_with_all_their_children(tmp_path, target, stop):
    port = free_port()
    variables = [f"VIZ_PORT={port}", f"MLFLOW_PORT={port}", f"MLFLOW_DB={tmp_path / 'mlflow.db'}"]
    make = subprocess.Popen(["make", "--no-print-directory", "-C", str(ROOT), target, *variables],
                            stdout=open(tmp_path / "log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: the "terminal" of Ctrl-C
    deadline = time.monotonic() + 240
    while not serving(port):
        if make.poll() is not None or time.monotonic() > deadline:
            os.killpg(make.pid, signal.SIGKILL)
            pytest.fail(f"make {target} never served port {port}:\n{(tmp_path / 'log').read_text()}")
        time.sleep(0.5)
    pids = descendants(make.pid)
    assert len(pids) >= 2, f"expected the server and its children under make, found {pids}"
    if stop == "SIGTERM":
        os.kill(make.pid, signal.SIGTERM)
    else:
        os.killpg(make.pid, signal.SIGINT)
    make.wait(timeout=30)
    if target == "mlflow-ui":  # the address that opens the runs, not MLflow 3's GenAI overview
        assert f"http://127.0.0.1:{port}/#/experiments?workflowType=machine_learning" in (tmp_path / "log").read_text()
    deadline = time.monotonic() + 15
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = sorted(p for p in pids if alive(p))
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"make {target} stopped by {stop} left processes {left} running"
    assert not serving(port)


def test_the_mlflow_address_opens_the_experiment_runs(tmp_path):
    db = tmp_path / "mlflow.db"
    assert mlflow_runs_url(db, 5000) == "http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"
    assert not db.exists()  # read only: no store made
    with sqlite3.connect(db) as store:
        store.execute("CREATE TABLE experiments (experiment_id INTEGER, name TEXT, lifecycle_stage TEXT)")
        store.executemany("INSERT INTO experiments VALUES (?, ?, ?)",
                          [(0, "Default", "active"), (3, "precipdiff", "deleted"), (7, "precipdiff", "active")])
    assert mlflow_runs_url(db, 5001) == "http://127.0.0.1:5001/#/experiments/7?workflowType=machine_learning"
