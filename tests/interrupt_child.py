"""Child process of the SIGINT tests: a two-node Kedro pipeline run as ``kedro run`` runs it.

    python tests/interrupt_child.py SCENARIO WORKDIR

The pipeline hooks are called as ``KedroSession.run`` calls them, around a ``SequentialRunner``
with :class:`precipdiff.hooks.InterruptHooks`. ``WORKDIR/ready`` appears when the child is at the
point where the test sends SIGINT; ``WORKDIR/second_node`` only if the run went on past it.

Scenarios
---------
save
    The first node's output is saved by :class:`precipdiff.datasets.NetCDFDataset`; the first
    acquisition of xarray's HDF5 lock pauses 2 s (``ready`` written), the window where a
    KeyboardInterrupt used to leave the lock held and hang the process.
swallow
    The first node catches (swallows) KeyboardInterrupt, as a ``__del__`` or a broad ``except`` does.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr
import xarray.backends.locks as xr_locks
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner

from precipdiff.datasets import NetCDFDataset
from precipdiff.hooks import InterruptHooks


def pause_in_xarray_lock(ready: Path) -> None:
    """Pause 2 s, with ``ready`` written, just after xarray takes its HDF5 lock to write the variables.

    That is inside ``to_netcdf``'s ``try`` whose ``finally`` closes the file (taking the lock again):
    a KeyboardInterrupt there used to leave the lock held, and the close waited for ever.
    """
    original = xr_locks.acquire

    def acquire(lock, blocking=True):
        result = original(lock, blocking)
        if not ready.exists() and _called_from("dump_to_store"):
            ready.write_text("inside xarray's lock")
            time.sleep(2.0)
        return result

    xr_locks.acquire = acquire


def _called_from(function: str) -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


def make_field() -> xr.Dataset:
    return xr.Dataset({"precipitation": (("time", "lat", "lon"), np.ones((4, 8, 8), np.float32))})


def swallowing_node(ready: Path) -> xr.Dataset:
    ready.write_text("in a node that swallows KeyboardInterrupt")
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
        except KeyboardInterrupt:
            pass
    return make_field()


def main(scenario: str, workdir: Path) -> None:
    ready, target = workdir / "ready", workdir / "out" / "field.nc"
    if scenario == "save":
        pause_in_xarray_lock(ready)
        first = node(make_field, None, "field", name="make_field")
    else:
        first = node(lambda: swallowing_node(ready), None, "field", name="swallow")
    second = node(lambda ds: (workdir / "second_node").write_text("ran"), "field", "done", name="second")
    catalog = DataCatalog({"field": NetCDFDataset(filepath=str(target)), "done": MemoryDataset()})
    hooks = _create_hook_manager()
    hooks.register(InterruptHooks())
    pipeline = Pipeline([first, second])
    args = {"run_params": {}, "pipeline": pipeline, "catalog": catalog}
    hooks.hook.before_pipeline_run(**args)
    try:
        result = SequentialRunner().run(pipeline, catalog, hooks)
    except Exception as error:
        hooks.hook.on_pipeline_error(error=error, **args)
        raise
    hooks.hook.after_pipeline_run(run_result=result, **args)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
