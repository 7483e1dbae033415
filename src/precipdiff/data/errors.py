"""Errors raised by the real-data readers (:mod:`~precipdiff.data.imerg`, :mod:`~precipdiff.data.mrms`,
:mod:`~precipdiff.data.files`, :mod:`~precipdiff.data.download`).

A reader error always names the file and the problem, so that a failed ingestion of thousands of
files can be traced to the one file that broke it. :func:`guarded_reader` makes that a guarantee:
whatever a damaged file makes the decoding libraries raise comes out as a :class:`ReaderError`, and
a decoded field outside the physical range is refused rather than returned.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from precipdiff.data.contract import VARIABLE, snap_box

# More than twice the WMO world record for about an hour (305 mm in 42 min, Holt, Missouri, 1947,
# ≈ 436 mm/h): a decoded rate above this is a damaged or mis-scaled file, not rain
PHYSICAL_MAX_RATE_MM_H = 1000.0


class ReaderError(ValueError):
    """A source file cannot be turned into canonical data; the message names the file and the problem."""


def reader_error(path: str | Path, problem: str) -> ReaderError:
    """Build a :class:`ReaderError` whose message starts with the file path."""
    return ReaderError(f"{path}: {problem}")


def guarded_reader(reader: Callable[..., xr.Dataset]) -> Callable[..., xr.Dataset]:
    """Wrap ``reader(path, box, ...)`` so that a bad file can only end in a :class:`ReaderError`.

    The box is checked first (a bad box stays a ``ContractError`` naming the box). Then any
    exception of the decoding libraries (h5py, eccodes, numpy, zlib …) except a missing file or
    exhausted memory is re-raised as a ``ReaderError`` naming the file and the original error (chained),
    and the returned ``precipitation`` must lie in ``[0, PHYSICAL_MAX_RATE_MM_H]`` mm/h or be NaN.
    """

    @functools.wraps(reader)
    def read(path: str | Path, box: Mapping[str, float], *args, **kwargs) -> xr.Dataset:
        snap_box(box)
        try:
            ds = reader(path, box, *args, **kwargs)
        except (ReaderError, FileNotFoundError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - damaged files make the C libraries raise anything
            raise reader_error(path, f"cannot decode ({type(exc).__name__}: {exc})") from exc
        check_physical_range(ds, path)
        return ds

    return read


def check_physical_range(ds: xr.Dataset, path: str | Path) -> None:
    """Raise :class:`ReaderError` if ``precipitation`` holds a value outside [0, 1000] mm/h (NaN allowed)."""
    values = np.asarray(ds[VARIABLE].values)
    bad = ~np.isnan(values) & ((values < 0) | (values > PHYSICAL_MAX_RATE_MM_H))
    if bad.any():
        found = values[bad]
        raise reader_error(path, f"{int(bad.sum())} decoded rate(s) outside the physical range 0..{PHYSICAL_MAX_RATE_MM_H:g}"
                                 f" mm/h (found {float(found.min()):g}..{float(found.max()):g}); the file is damaged or "
                                 "mis-scaled")
