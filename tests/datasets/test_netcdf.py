"""``precipdiff.datasets.NetCDFDataset``: atomic save, eager load, stale temporary files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import xarray as xr

from precipdiff.datasets import NetCDFDataset


def test_save_round_trips_and_removes_a_dead_process_tmp(tmp_path):
    target = tmp_path / "radar.nc"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    stale = tmp_path / f"radar.nc.tmp-{child.pid}"
    stale.write_bytes(b"half a NetCDF")
    ds = xr.Dataset({"precipitation": (("time", "lat", "lon"), np.arange(8, dtype=np.float32).reshape(2, 2, 2))})
    dataset = NetCDFDataset(filepath=str(target))
    dataset.save(ds)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["radar.nc"]
    np.testing.assert_array_equal(dataset.load()["precipitation"].values, ds["precipitation"].values)
