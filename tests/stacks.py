"""Model inputs as preprocessing writes them (stacks of box-hours, ``precipdiff.data.boxes``), built by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from precipdiff.data import boxes as bx


def model_input(variables: dict[str, np.ndarray], lat: np.ndarray, lon: np.ndarray, split, *, times=None,
                box_numbers=None, regions=None, attrs: dict | None = None) -> xr.Dataset:
    """A model-input stack: ``variables`` ``(N, H, W)`` on the cell centres ``lat`` ``(H,)``, ``lon`` ``(W,)``
    (the same box for every sample unless ``box_numbers`` differ), one ``split`` per sample; hourly
    times from 2022-10-01T01:00 unless given; box names ``b<number>`` and regions ``box`` unless given."""
    n = len(split)
    times = pd.date_range("2022-10-01T01:00", periods=n, freq="h").values if times is None else np.asarray(times)
    numbers = np.zeros(n, dtype=np.int64) if box_numbers is None else np.asarray(box_numbers, dtype=np.int64)
    regions = np.full(n, "box") if regions is None else np.asarray(regions, dtype=str)
    ds = xr.Dataset({k: (bx.STACK_DIMS, np.asarray(v, dtype=np.float32)) for k, v in variables.items()},
                    coords={"time": ("sample", times), "box": ("sample", np.array([f"b{k}" for k in numbers])),
                            "box_number": ("sample", numbers), "region": ("sample", regions),
                            "lat": (("sample", "y"), np.broadcast_to(lat, (n, len(lat))).copy()),
                            "lon": (("sample", "x"), np.broadcast_to(lon, (n, len(lon))).copy()),
                            "split": ("sample", np.asarray(split, dtype=str))},
                    attrs={"transform": "log1p", "upsampling": "bilinear", **(attrs or {})})
    return ds
