"""Download MRMS (NOAA open-data bucket) and IMERG (NASA Earthdata) files.

The network clients are optional and imported lazily (``pip install precipdiff[download]``):

* :func:`download_mrms` lists and copies ``s3://noaa-mrms-pds/CONUS/<Product>_00.00/<YYYYMMDD>/
  MRMS_<Product>_00.00_<YYYYMMDD>-<HHMMSS>.grib2.gz`` anonymously with ``s3fs`` — or with any
  fsspec filesystem laid out the same way (tests use a local/in-memory one);
* :func:`download_imerg` searches and downloads granules with ``earthaccess`` (needs an Earthdata
  login: ``EARTHDATA_USERNAME``/``EARTHDATA_PASSWORD``, ``~/.netrc`` or an interactive prompt).

Both skip files already present in ``dest``, so an interrupted download can simply be rerun.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from precipdiff.data.contract import snap_box
from precipdiff.data.errors import ReaderError
from precipdiff.data.mrms import PRODUCTS, RATE_PRODUCTS, parse_name

log = logging.getLogger(__name__)
MRMS_BUCKET = "noaa-mrms-pds"  # AWS Open Data (NOAA Open Data Dissemination), anonymous access
MRMS_LEVEL = "00.00"  # MRMS names carry a level; surface precipitation products use 00.00
# GES DISC collection short names of the half-hourly IMERG runs (version "07" current)
IMERG_SHORT_NAMES = {"early": "GPM_3IMERGHHE", "late": "GPM_3IMERGHHL", "final": "GPM_3IMERGHH"}


def _optional(module: str, purpose: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{purpose} needs the optional package {module!r}: pip install {module} "
                          f"(or pip install 'precipdiff[download]')") from exc


def mrms_day_prefix(product: str, day: pd.Timestamp, region: str = "CONUS", bucket: str = MRMS_BUCKET) -> str:
    """Bucket folder of one product and UTC day: ``<bucket>/<region>/<Product>_00.00/<YYYYMMDD>``."""
    return f"{bucket}/{region}/{product}_{MRMS_LEVEL}/{day:%Y%m%d}"


def download_mrms(
    product: str,
    start,
    end,
    dest: str | Path,
    fs=None,
    *,
    region: str = "CONUS",
    bucket: str = MRMS_BUCKET,
) -> list[Path]:
    """Copy the MRMS files of ``product`` valid in ``[start, end]`` (UTC) into ``dest``.

    Parameters
    ----------
    product
        One of :data:`precipdiff.data.mrms.PRODUCTS`, e.g. ``"MultiSensor_QPE_01H_Pass2"``.
    start, end
        Anything :class:`pandas.Timestamp` accepts; naive times are UTC; both ends inclusive.
    dest
        Local directory (created if needed); files keep their bucket names.
    fs
        An fsspec filesystem with the bucket layout; ``None`` → anonymous ``s3fs.S3FileSystem``.
    region, bucket
        Bucket layout (``CONUS``; ``ALASKA``, ``HAWAII``, … exist for some products).

    Returns
    -------
    list of Path
        Local files (downloaded now or already present), sorted by time. 1-h products keep only the
        top-of-hour files (the bucket also holds rolling 1-h sums every 2 min for ``RadarOnly``).

    Raises
    ------
    ReaderError
        Unknown product, or no file at all in the period (names the bucket folders looked at).
    """
    if product not in PRODUCTS:
        raise ReaderError(f"download_mrms: unsupported product {product!r}; supported: {sorted(PRODUCTS)}")
    start, end = _utc(start), _utc(end)
    fs = fs if fs is not None else _optional("s3fs", "download_mrms").S3FileSystem(anon=True)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths, folders = [], []
    for day in pd.date_range(start.normalize(), end.normalize(), freq="D"):
        folders.append(mrms_day_prefix(product, day, region, bucket))
        for remote in _remote_files(fs, folders[-1], product, start, end):
            paths.append(_fetch(fs, remote, dest / Path(remote).name))
    if not paths:
        raise ReaderError(f"download_mrms: no {product} file valid in {start} .. {end} under {folders[:3]}"
                          f"{' …' if len(folders) > 3 else ''} (the noaa-mrms-pds archive starts in Oct 2020; "
                          "older GaugeCorr files are at the Iowa Environmental Mesonet mtarchive)")
    return sorted(paths, key=lambda p: parse_name(p)[1])


def _utc(value) -> pd.Timestamp:
    """A naive UTC timestamp (MRMS file names are UTC); aware inputs are converted."""
    stamp = pd.Timestamp(value)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _remote_files(fs, folder: str, product: str, start: pd.Timestamp, end: pd.Timestamp) -> list[str]:
    """Files of ``folder`` whose valid time lies in [start, end] (top of the hour for 1-h products)."""
    try:
        listing = fs.ls(folder, detail=False)
    except FileNotFoundError:
        log.warning("download_mrms: %s does not exist", folder)
        return []
    keep = []
    for remote in sorted(listing):
        try:
            found, valid = parse_name(Path(remote).name)
        except ReaderError:
            continue  # not an MRMS product file (e.g. a listing marker)
        hourly_ok = product in RATE_PRODUCTS or (valid.minute == 0 and valid.second == 0)
        if found == product and start <= valid <= end and hourly_ok:
            keep.append(remote)
    return keep


def _fetch(fs, remote: str, local: Path) -> Path:
    """Copy one file unless it is already there; write to ``.part`` first so a crash leaves no stub."""
    if local.exists() and local.stat().st_size > 0:
        return local
    partial = local.with_name(local.name + ".part")
    fs.get(remote, str(partial))
    os.replace(partial, local)
    log.info("downloaded %s", local.name)
    return local


def download_imerg(
    short_name: str,
    start,
    end,
    box: Mapping[str, float],
    dest: str | Path,
    *,
    version: str | None = "07",
) -> list[Path]:
    """Download the IMERG granules of ``short_name`` overlapping ``[start, end]`` and ``box``.

    Parameters
    ----------
    short_name
        GES DISC collection, e.g. ``"GPM_3IMERGHH"`` (Final), ``"GPM_3IMERGHHL"`` (Late),
        ``"GPM_3IMERGHHE"`` (Early); see :data:`IMERG_SHORT_NAMES`.
    start, end
        Period (UTC), anything :class:`pandas.Timestamp` accepts.
    box
        ``{lat_min, lat_max, lon_min, lon_max}`` in degrees; the granules are global, the box only
        filters the search (read the box later with :func:`~precipdiff.data.imerg.read_imerg`).
    dest
        Local directory; earthaccess skips files already there.
    version
        Collection version (``"07"``); ``None`` lets earthaccess search every version.

    Returns
    -------
    list of Path
        The local files, sorted by name (= by time).
    """
    earthaccess = _optional("earthaccess", "download_imerg")
    b = snap_box(box)
    auth = earthaccess.login()
    if not getattr(auth, "authenticated", True):
        raise PermissionError("download_imerg: Earthdata login failed; set EARTHDATA_USERNAME and "
                              "EARTHDATA_PASSWORD or add urs.earthdata.nasa.gov to ~/.netrc")
    query = {"short_name": short_name, "temporal": (_utc(start).isoformat(), _utc(end).isoformat()),
             "bounding_box": (b["lon_min"], b["lat_min"], b["lon_max"], b["lat_max"])}  # CMR order: W, S, E, N
    if version:
        query["version"] = version
    granules = earthaccess.search_data(**query)
    if not granules:
        raise ReaderError(f"download_imerg: no {short_name} granule (version {version}) for {start} .. {end} "
                          f"in box {b}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    files = earthaccess.download(granules, local_path=str(dest))
    return sorted(Path(f) for f in files)
