"""Stop a real run at a named point inside it: the SIGKILL and SIGINT tests of issue #13, item 4.

A *point* is a moment where an interrupt can do harm (a file half-written, a registry entry just
made); :func:`install` patches the library call there (torch, xarray, MLflow's store — not
precipdiff's own functions, so the points survive a reorganisation of its modules) so that
``action`` runs at that moment:

``checkpoint:<folder>:<step>``
    inside the write of the training checkpoint of step ``<step>`` in ``…/<folder>/latest.pt``
    (``torch.save`` into its temporary file ``.latest.pt.tmp-<pid>``), half of its bytes written;
``registered:<model>``
    just after the MLflow registry committed a new version of ``<model>``
    (``SqlAlchemyStore.create_model_version`` returned);
``hour:<n>``
    inside the write of the ``<n>``-th hour file of an inference output (``<output>.parts/``), half
    of its bytes written;
``consolidation``
    inside the write of the consolidated inference output, half of its bytes written;
``publish:<name>``
    just before the temporary file of ``<name>`` (any file written through
    :func:`precipdiff.atomic.atomic_write`: report, figure, JSON, CSV, DDP hand-off) is moved onto
    it (``os.replace``), the temporary file cut to half its bytes: the moment a write in place would
    leave a half-written ``<name>``.

Run as a script, this module is the child process of the SIGKILL tests: it installs a *pause* at
the point (writes ``WORKDIR/ready`` holding the path of the half-written file, if any, then sleeps)
and runs the command in-process, exactly as its console script does::

    python tests/paused_run.py POINT WORKDIR kedro run --env test --pipelines correction_training
    python tests/paused_run.py POINT WORKDIR precipdiff downscale --input … --output …

The test polls the file system for ``ready`` (:func:`signal_at_pause`) and kills the child by PID.
In-process, the SIGINT tests install ``os.kill(os.getpid(), SIGINT)`` as the action instead.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

Action = Callable[[Path | None], None]
TMP_MARK = ".tmp-"


def install(point: str, action: Action) -> Callable[[], None]:
    """Patch the library call behind ``point`` so that it calls ``action``; returns the undo."""
    kind, _, arg = point.partition(":")
    if kind == "checkpoint":
        folder, step = arg.split(":")
        return _checkpoint(folder, int(step), action)
    if kind == "registered":
        return _registered(arg, action)
    if kind in ("hour", "consolidation"):
        return _netcdf(int(arg) if kind == "hour" else None, action)
    if kind == "publish":
        return _publish(arg, action)
    raise ValueError(f"unknown pause point {point!r}")


def _checkpoint(folder: str, step: int, action: Action) -> Callable[[], None]:
    import torch

    real = torch.save

    def save(obj, f, *args, **kwargs):
        target = Path(f) if isinstance(f, (str, os.PathLike)) else None
        if (target is not None and target.name.startswith(".latest.pt" + TMP_MARK) and target.parent.name == folder
                and isinstance(obj, dict) and obj.get("step") == step):
            buffer = io.BytesIO()
            real(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            target.write_bytes(data[: len(data) // 2])
            return action(target)
        return real(obj, f, *args, **kwargs)

    torch.save = save
    return lambda: setattr(torch, "save", real)


def _registered(model: str, action: Action) -> Callable[[], None]:
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    real = SqlAlchemyStore.create_model_version

    def create_model_version(self, name, *args, **kwargs):
        version = real(self, name, *args, **kwargs)
        if name == model:
            action(None)
        return version

    SqlAlchemyStore.create_model_version = create_model_version
    return lambda: setattr(SqlAlchemyStore, "create_model_version", real)


def _netcdf(hour: int | None, action: Action) -> Callable[[], None]:
    """``hour``: the n-th file written into an ``*.parts`` folder; None: the output beside that folder."""
    import xarray as xr

    real = xr.Dataset.to_netcdf
    seen = []

    def to_netcdf(self, path=None, *args, **kwargs):
        result = real(self, path, *args, **kwargs)
        target = Path(path) if isinstance(path, (str, os.PathLike)) else None
        if target is None or TMP_MARK not in target.name:
            return result
        published = target.name.split(TMP_MARK)[0].lstrip(".")
        in_parts = target.parent.name.endswith(".parts")
        if in_parts:
            seen.append(target)
        if (hour is not None and in_parts and len(seen) == hour) or (
                hour is None and not in_parts and (target.parent / f"{published}.parts").is_dir()):
            target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
            action(target)
        return result

    xr.Dataset.to_netcdf = to_netcdf
    return lambda: setattr(xr.Dataset, "to_netcdf", real)


def _publish(name: str, action: Action) -> Callable[[], None]:
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        source = Path(src)
        if Path(dst).name == name and TMP_MARK in source.name:
            source.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
            action(source)
        return real(src, dst, *args, **kwargs)

    os.replace = replace
    return lambda: setattr(os, "replace", real)


# ---------------------------------------------------------------------------------------------
# The test side: start a paused child, signal it once it is at the point


def start(point: str, workdir: Path, command: list[str], cwd: Path) -> subprocess.Popen:
    """This module as a child process running ``command`` with a pause at ``point``; output in ``workdir/log``.

    The child starts as a command in a terminal would: without the MLflow URIs this process may have
    put in its environment (``mlflow.set_tracking_uri``); with as many torch threads as this process
    (results must not depend on it, but the re-run and the reference run in this process), and a
    wide console so that its log lines do not wrap.
    """
    import torch

    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env |= {"KEDRO_DISABLE_TELEMETRY": "1", "COLUMNS": "400", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    with open(workdir / "log", "w") as log:
        return subprocess.Popen([sys.executable, __file__, point, str(workdir), *command], cwd=cwd, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def signal_at_pause(child: subprocess.Popen, workdir: Path, sig: int = signal.SIGKILL, timeout: float = 300.0,
                    watch: Callable[[], None] | None = None) -> Path | None:
    """Poll for ``workdir/ready``, then send ``sig`` to the child by PID and wait for it to end.

    ``watch`` is called at every poll (an assertion on the file system while the child runs).
    Returns the half-written file the child paused in (None for points without one).
    """
    import pytest

    deadline = time.monotonic() + timeout
    ready = workdir / "ready"
    try:
        while not ready.exists() or not ready.read_text().endswith("\n"):
            if watch is not None:
                watch()
            if child.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the child never reached its pause point (status {child.poll()}):\n{log_text(workdir)}")
            time.sleep(0.01)
    except BaseException:
        child.kill()
        child.wait()
        raise
    os.kill(child.pid, sig)
    child.wait(timeout=60)
    text = ready.read_text().strip()
    return Path(text) if text else None


def log_text(workdir: Path) -> str:
    """What the child printed, whitespace-normalised (rich wraps long lines)."""
    return " ".join((workdir / "log").read_text(errors="replace").split())


def _pause(workdir: Path) -> Action:
    def pause(half_written: Path | None) -> None:
        (workdir / "ready").write_text(f"{half_written.absolute() if half_written else ''}\n")
        time.sleep(3600)

    return pause


def _run(command: list[str]) -> int:
    if command[0] == "kedro":
        from kedro.framework.cli import main

        sys.argv = command
        main()  # exits
        return 0
    if command[0] == "precipdiff":
        from precipdiff.cli import main

        return main(command[1:])
    raise ValueError(f"unknown command {command[0]!r}")


if __name__ == "__main__":
    install(sys.argv[1], _pause(Path(sys.argv[2])))
    sys.exit(_run(sys.argv[3:]))
