"""Errors raised by the real-data readers (:mod:`~precipdiff.data.imerg`, :mod:`~precipdiff.data.mrms`,
:mod:`~precipdiff.data.files`, :mod:`~precipdiff.data.download`).

A reader error always names the file and the problem, so that a failed ingestion of thousands of
files can be traced to the one file that broke it. :func:`guarded_reader` makes that a guarantee:
whatever a damaged file makes the decoding libraries raise comes out as a :class:`ReaderError`, and
a decoded field outside the physical range is refused rather than returned.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from precipdiff.data.contract import VARIABLE, snap_box

log = logging.getLogger(__name__)

# More than twice the WMO world record for about an hour (305 mm in 42 min, Holt, Missouri, 1947,
# ≈ 436 mm/h): a decoded rate above this is a damaged or mis-scaled file, not rain
PHYSICAL_MAX_RATE_MM_H = 1000.0
# ... unless it is a speck: real archives carry a few such cells (the shared MRMS GaugeCorr file of
# 2016-09-22 23:00 holds two adjacent cells of 3112 mm in the Sierra Nevada among 15 million valid
# ones). Up to this many cells, or this share of the valid cells, become missing (NaN, never rain)
# with a warning naming the file; more, and the file is refused as damaged.
SPECK_CELLS, SPECK_SHARE = 10, 1e-4


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
    """Raise :class:`ReaderError` if ``precipitation`` holds values outside [0, 1000] mm/h (NaN allowed),
    except specks (at most ``SPECK_CELLS`` cells or ``SPECK_SHARE`` of the valid ones), which are set
    to NaN in place and logged."""
    values = np.asarray(ds[VARIABLE].values)
    bad = ~np.isnan(values) & ((values < 0) | (values > PHYSICAL_MAX_RATE_MM_H))
    n_bad = int(bad.sum())
    if not n_bad:
        return
    found = values[bad]
    what = (f"{n_bad} decoded rate(s) outside the physical range 0..{PHYSICAL_MAX_RATE_MM_H:g} mm/h (found "
            f"{float(found.min()):g}..{float(found.max()):g})")
    if n_bad > max(SPECK_CELLS, SPECK_SHARE * int(np.isfinite(values).sum())):
        raise reader_error(path, f"{what}; the file is damaged or mis-scaled")
    values[bad] = np.nan
    log.warning("%s: %s set to missing (isolated specks, not rain)", path, what)
