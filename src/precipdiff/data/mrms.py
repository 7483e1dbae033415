"""Read NOAA MRMS GRIB2 precipitation (plain or ``.grib2.gz``) into the canonical *radar* contract.

Decoding uses eccodes directly (one message, ~0.25 s for the 3500 x 7000 CONUS field) rather than
cfgrib/xarray (~14 s per file). eccodes cannot decode part of a PNG-packed field (GRIB2 template
5.41, which MRMS uses): ``codes_get_double_elements`` unpacks the whole field internally, at the
same time and peak memory (measured, ``benchmarks/bench_readers.py``). So the field is decoded
once, the box is sliced as a view, and only the box is copied to float32.

Products (name from the file name, checked against the GRIB2 parameter, MRMS ``UserTable_MRMS_v12.2``
discipline 209, category 6):

=============================  =====  =========================================  ==================
product (file name)            param  quantity                                   ``time``
=============================  =====  =========================================  ==================
``PrecipRate``                 1      instantaneous rate, mm/h, every 2 min      valid time
``RadarOnly_QPE_01H``          2      1-h accumulation, mm                       end of the hour
``GaugeCorr_QPE_01H``          9      1-h accumulation, mm (until Oct 2020)      end of the hour
``MultiSensor_QPE_01H_Pass1``  30     1-h accumulation, mm (from Oct 2020)       end of the hour
``MultiSensor_QPE_01H_Pass2``  37     1-h accumulation, mm (from Oct 2020)       end of the hour
=============================  =====  =========================================  ==================

A 1-h accumulation in mm is numerically the mean rate in mm/h over the hour ending at ``time``.
Missing data: MRMS codes -3 (no coverage), -1 and -999 (missing), bitmap-masked points and the
eccodes ``missingValue`` all become NaN (never rain); in practice every negative value is a code.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Mapping
from pathlib import Path

import eccodes
import numpy as np
import pandas as pd
import xarray as xr

from precipdiff.data.contract import GRID_TOLERANCE, RESOLUTION, grid_for_box, make_dataset
from precipdiff.data.errors import ReaderError, guarded_reader, reader_error

# MRMS UserTable_MRMS_v12.2 (GRIB2 discipline 209, category 6): parameter number of each product
PRODUCTS = {
    "PrecipRate": 1,
    "RadarOnly_QPE_01H": 2,
    "GaugeCorr_QPE_01H": 9,
    "MultiSensor_QPE_01H_Pass1": 30,
    "MultiSensor_QPE_01H_Pass2": 37,
}
RATE_PRODUCTS = ("PrecipRate",)  # instantaneous rates; the others are 1-h accumulations
BITMAP_SENTINEL = -1.0e30  # what eccodes writes at bitmap-masked points (negative, so it becomes NaN)
DISCIPLINE, CATEGORY = 209, 6
_MICRO = 1_000_000  # GRIB2 angles are integers in micro-degrees
_NAME = re.compile(r"^(?:MRMS_)?(?P<product>\w+?)_(?P<level>\d\d\.\d\d)_(?P<stamp>\d{8}-\d{6})\.grib2(?:\.gz)?$")


def parse_name(path: str | Path) -> tuple[str, pd.Timestamp]:
    """``(product, valid time)`` from an MRMS file name such as
    ``MRMS_MultiSensor_QPE_01H_Pass2_00.00_20230101-010000.grib2.gz``.

    Raises :class:`ReaderError` for names that do not follow the MRMS pattern or name a product
    this reader does not support.
    """
    path = Path(path)
    match = _NAME.match(path.name)
    if not match:
        raise reader_error(path, "file name is not MRMS_<Product>_<level>_YYYYMMDD-HHMMSS.grib2[.gz]")
    if match["product"] not in PRODUCTS:
        raise reader_error(path, f"unsupported MRMS product {match['product']!r}; supported: {sorted(PRODUCTS)}")
    return match["product"], pd.to_datetime(match["stamp"], format="%Y%m%d-%H%M%S")


@guarded_reader
def read_mrms(path: str | Path, box: Mapping[str, float]) -> xr.Dataset:
    """Read the box of one MRMS GRIB2 file as canonical radar data.

    Parameters
    ----------
    path
        ``[MRMS_]<Product>_00.00_YYYYMMDD-HHMMSS.grib2`` or ``.grib2.gz`` (see :data:`PRODUCTS`).
    box
        ``{lat_min, lat_max, lon_min, lon_max}`` in degrees (lon east in [-180, 180)), snapped inward
        to the 0.1° grid; the radar cells are the 0.01° cells nested in it.

    Returns
    -------
    xarray.Dataset
        ``precipitation`` (time=1, lat, lon) float32 mm/h (1-h accumulations in mm are the mean rate
        over the hour ending at ``time``), NaN where MRMS has no data.

    Raises
    ------
    ReaderError
        Unsupported product, truncated or non-GRIB file, grid or parameter not as expected, GRIB
        valid time different from the file name's, box outside the grid, any other decoding failure,
        or a decoded rate outside 0..1000 mm/h (:func:`~precipdiff.data.errors.guarded_reader`); the
        message names the file.
    """
    path = Path(path)
    product, name_time = parse_name(path)
    lat, lon = grid_for_box(box, "radar")
    handle = _new_handle(path)
    try:
        _check_parameter(handle, product, path)
        valid = valid_time(handle, path)
        if valid != name_time:
            raise reader_error(path, f"GRIB valid time {valid} differs from the file name's {name_time}")
        grid = grid_geometry(handle, path)
        rows, cols = box_slices(grid, lat, lon, path)  # before decoding: a wrong box fails fast
        eccodes.codes_set(handle, "missingValue", BITMAP_SENTINEL)  # bitmap points -> sentinel, never 9999
        field = _as_grid(eccodes.codes_get_values(handle), grid, path)
    except eccodes.CodesInternalError as exc:
        raise reader_error(path, f"eccodes cannot decode the message ({exc})") from exc
    finally:
        eccodes.codes_release(handle)
    values = field[rows, cols].astype(np.float32)  # the only copy: the box, flipped to ascending lat
    values[values < 0] = np.nan  # MRMS codes -3/-1/-999 and the bitmap sentinel
    return _dataset(values, valid, lat, lon, product, path)


def grid_extent(path: str | Path) -> dict[str, float]:
    """Edges ``{lat_min, lat_max, lon_min, lon_max}`` (degrees, lon east in [-180, 180)) of the regular
    0.01° grid of an MRMS file, from its GRIB2 grid section (no field is decoded)."""
    path = Path(path)
    handle = _new_handle(path)
    try:
        grid = grid_geometry(handle, path)
    except (eccodes.CodesInternalError, KeyError, ValueError) as exc:
        if isinstance(exc, ReaderError):
            raise
        raise reader_error(path, f"eccodes cannot read the grid section ({exc})") from exc
    finally:
        eccodes.codes_release(handle)
    half = round(RESOLUTION["radar"] * _MICRO) // 2
    lats = sorted((grid["lat0"], grid["lat0"] + (grid["nj"] - 1) * grid["dj"]))
    lons = sorted((grid["lon0"], grid["lon0"] + (grid["ni"] - 1) * grid["di"]))
    return {"lat_min": (lats[0] - half) / _MICRO, "lat_max": (lats[1] + half) / _MICRO,
            "lon_min": (lons[0] - half) / _MICRO, "lon_max": (lons[1] + half) / _MICRO}


def read_message(path: Path) -> bytes:
    """Bytes of the single GRIB2 message in ``path`` (gunzipped in memory if gzip-compressed)."""
    data = path.read_bytes()
    if not data:
        raise reader_error(path, "empty file (0 bytes); expected one GRIB2 message (an interrupted download?)")
    if data[:2] == b"\x1f\x8b":  # gzip magic number (RFC 1952)
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise reader_error(path, f"truncated or corrupt gzip stream ({exc}); expected a complete gzip "
                                     "of one GRIB2 message") from exc
    start = data.find(b"GRIB", 0, 1024)
    if start < 0:
        raise reader_error(path, f"not a GRIB file: expected a 'GRIB' marker in the first 1024 bytes, found "
                                 f"{data[:40]!r}…")
    if len(data) < start + 16 or data[start + 7] != 2:
        raise reader_error(path, "not a GRIB edition 2 message (MRMS is GRIB2)")
    length = int.from_bytes(data[start + 8:start + 16], "big")  # GRIB2 section 0, octets 9-16
    if len(data) < start + length:
        raise reader_error(path, f"truncated GRIB2 message: declares {length} bytes, file holds {len(data) - start}")
    if data[start + length - 4:start + length] != b"7777":  # GRIB2 section 8
        raise reader_error(path, "corrupt GRIB2 message: no '7777' end marker where the length says")
    message = data[start:start + length]
    check_layout(message, path)
    return message


# WMO FM 92 GRIB2 templates an MRMS field uses -> their section length in octets: section 1;
# 3.0 regular lat/lon; 4.0 analysis at a level (+ 4 octets per optional coordinate value);
# 5.0 simple, 5.2 complex, 5.3 complex + spatial differencing, 5.41 PNG packing
SECTION_LENGTHS = {1: {None: 21}, 3: {0: 72}, 4: {0: 34}, 5: {0: 21, 2: 47, 3: 49, 41: 21}}
_TEMPLATE_OCTETS = {3: slice(12, 14), 4: slice(7, 9), 5: slice(9, 11)}  # template number, 0-based
FIELD_SECTIONS = ([1, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7])  # one field, optional local section 2


def check_layout(message: bytes, path: Path) -> None:
    """Check the section structure of a single-field GRIB2 message before eccodes parses it.

    eccodes trusts the declared section lengths: a message whose lengths and templates disagree can
    corrupt its heap (found by ``tests/data/test_reader_fuzz.py``). Sections must come as 1, [2], 3,
    4, 5, 6, 7, end exactly at the ``7777`` and have the length of their template (:data:`SECTION_LENGTHS`).
    """
    sections = {}
    for number, body in _sections(message, path):
        points = int.from_bytes(sections[3][6:10], "big") if 3 in sections else 0  # section 3 octets 7-10
        expected, template = _expected_length(number, body, points)
        if expected is not None and len(body) != expected:
            raise reader_error(path, f"corrupt or unsupported GRIB2 message: section {number} (template/indicator "
                                     f"{template}) has {len(body)} octets; expected {expected} (supported: templates "
                                     "3.0, 4.0, 5.0/5.2/5.3/5.41, bitmap indicator 0 or 255)")
        sections[number] = body if number not in sections else b""  # a repeated section fails the order check
    if list(sections) not in FIELD_SECTIONS or b"" in sections.values():
        raise reader_error(path, f"corrupt GRIB2 message: sections {list(sections)}; expected one field, "
                                 "sections 1, [2], 3-7")
    _check_value_count(sections, path)
    if int.from_bytes(sections[5][9:11], "big") == 41:
        _check_png(sections, path)


def _check_value_count(sections: dict[int, bytes], path: Path) -> None:
    """Section 5's number of packed values must be the grid points present in the bitmap (or all of them)."""
    points = int.from_bytes(sections[3][6:10], "big")
    bitmap = sections[6]
    present = points if bitmap[5] == 255 else int(np.unpackbits(np.frombuffer(bitmap[6:], np.uint8))[:points].sum())
    packed = int.from_bytes(sections[5][5:9], "big")  # section 5 octets 6-9
    if packed != present:
        raise reader_error(path, f"corrupt GRIB2 message: section 5 packs {packed} values; expected {present} "
                                 f"(grid points with data, of {points})")


def _check_png(sections: dict[int, bytes], path: Path) -> None:
    """Template 5.41: the PNG header in section 7 must match section 5, as eccodes asserts (an abort)."""
    bits = sections[5][19]  # section 5 octet 20: bits per value; 0 = constant field, no image
    png = sections[7][5:]
    if bits == 0:
        return
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":  # PNG signature, then the IHDR chunk
        raise reader_error(path, "corrupt GRIB2 message: section 7 of a PNG-packed field does not start with a "
                                 "PNG header")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    depth = {2: 24, 6: 32}.get(png[25], png[24])  # colour type RGB / RGBA, else the bit depth
    packed = int.from_bytes(sections[5][5:9], "big")
    if width * height != packed or depth != (bits + 7) // 8 * 8:
        raise reader_error(path, f"corrupt GRIB2 message: PNG image {width} x {height} of {depth} bits; expected "
                                 f"{packed} values of {(bits + 7) // 8 * 8} bits (section 5)")


def _sections(message: bytes, path: Path):
    """``(number, bytes)`` of each section between section 0 (16 octets) and the final ``7777``."""
    offset, end = 16, len(message) - 4
    while offset < end:
        size = int.from_bytes(message[offset:offset + 4], "big")
        number = message[offset + 4] if offset + 4 < end else None
        if size < 5 or offset + size > end or number not in range(1, 8):
            raise reader_error(path, f"corrupt GRIB2 message: section at octet {offset + 1} declares {size} octets "
                                     f"and number {number}; expected a section 1-7 ending by the '7777' at {end + 1}")
        yield number, message[offset:offset + size]
        offset += size


def _expected_length(number: int, body: bytes, points: int) -> tuple[int | None, int | None]:
    """``(length, template)`` a section must have; length ``None`` = not fixed (sections 2, 7)."""
    template = int.from_bytes(body[_TEMPLATE_OCTETS[number]], "big") if number in _TEMPLATE_OCTETS else None
    if number == 6:  # octet 6: 255 no bitmap, 0 one bit per grid point; 254 (earlier bitmap) cannot occur here
        return {255: 6, 0: 6 + -(-points // 8)}.get(body[5], -1), body[5]
    length = SECTION_LENGTHS.get(number, {}).get(template, -1 if number in SECTION_LENGTHS else None)
    if number == 4 and length != -1:
        length += 4 * int.from_bytes(body[5:7], "big")  # octets 6-7: optional coordinate values
    return length, template


def _new_handle(path: Path):
    try:
        return eccodes.codes_new_from_message(read_message(path))
    except eccodes.CodesInternalError as exc:
        raise reader_error(path, f"eccodes cannot parse the GRIB2 message ({exc})") from exc


def _check_parameter(handle, product: str, path: Path) -> None:
    found = tuple(eccodes.codes_get(handle, key) for key in ("discipline", "parameterCategory", "parameterNumber"))
    expected = (DISCIPLINE, CATEGORY, PRODUCTS[product])
    if found != expected:
        raise reader_error(path, f"file name says {product} (GRIB2 parameter {expected}) but the message holds "
                                 f"parameter {found}")


def valid_time(handle, path: Path) -> pd.Timestamp:
    """Valid time from the GRIB metadata: reference ``dataDate``/``dataTime`` + step (eccodes ``validity*``)."""
    date, hhmm = eccodes.codes_get(handle, "validityDate"), eccodes.codes_get(handle, "validityTime")
    second = eccodes.codes_get(handle, "second") if eccodes.codes_is_defined(handle, "second") else 0
    try:
        return pd.Timestamp(f"{date:08d}T{hhmm:04d}") + pd.Timedelta(seconds=second)
    except ValueError as exc:
        raise reader_error(path, f"GRIB validity date/time {date} {hhmm} is not a date ({exc})") from exc


def grid_geometry(handle, path: Path) -> dict[str, int]:
    """Regular lat/lon grid of the message, angles in integer micro-degrees, lon in [-180, 180)."""
    if eccodes.codes_get(handle, "gridType") != "regular_ll":
        raise reader_error(path, f"grid type {eccodes.codes_get(handle, 'gridType')!r}, expected regular_ll")
    def get(key: str):
        return eccodes.codes_get(handle, key)

    grid = {
        "ni": get("Ni"), "nj": get("Nj"),
        "lat0": round(get("latitudeOfFirstGridPointInDegrees") * _MICRO),
        "lon0": (round(get("longitudeOfFirstGridPointInDegrees") * _MICRO) + 180 * _MICRO) % (360 * _MICRO)
        - 180 * _MICRO,
        # GRIB2 flag table 3.4: i scans west->east unless bit 1; j north->south unless bit 2
        "di": round(get("iDirectionIncrementInDegrees") * _MICRO) * (-1 if get("iScansNegatively") else 1),
        "dj": round(get("jDirectionIncrementInDegrees") * _MICRO) * (1 if get("jScansPositively") else -1),
        "j_consecutive": get("jPointsAreConsecutive"),
    }
    points = get("numberOfDataPoints")  # GRIB2 section 3; checked before decoding allocates for it
    if points != grid["ni"] * grid["nj"]:
        raise reader_error(path, f"grid section holds {points} points; expected Ni x Nj = {grid['ni']} x {grid['nj']} "
                                 f"= {grid['ni'] * grid['nj']}")
    step = round(RESOLUTION["radar"] * _MICRO)
    if abs(grid["di"]) != step or abs(grid["dj"]) != step:
        raise reader_error(path, f"grid spacing {abs(grid['dj']) / _MICRO}° x {abs(grid['di']) / _MICRO}°, "
                                 f"expected {RESOLUTION['radar']}°")
    return grid


def box_slices(grid: dict[str, int], lat: np.ndarray, lon: np.ndarray, path: Path) -> tuple[slice, slice]:
    """Row and column slices of the (Nj, Ni) field giving the box with latitude ascending."""
    rows = _axis_slice(lat, grid["lat0"], grid["dj"], grid["nj"], "lat", path)
    cols = _axis_slice(lon, grid["lon0"], grid["di"], grid["ni"], "lon", path)
    return rows, cols


def _axis_slice(target: np.ndarray, first: int, step: int, n: int, name: str, path: Path) -> slice:
    """Slice of the file axis ``first + i * step`` (micro-degrees) holding the ``target`` centres.

    Every target centre must lie within :data:`GRID_TOLERANCE` of a cell of a file grid point
    (old archives carry micro-degree origin jitter); the file's nearest points are taken.
    """
    offsets = np.rint(target * _MICRO).astype(np.int64) - first
    idx = np.rint(offsets / step).astype(np.int64)
    worst = int(np.abs(offsets - idx * step).max())  # micro-degrees between a box centre and its file point
    if worst > GRID_TOLERANCE * abs(step):
        raise reader_error(path, f"{name} cell centres of the box are {worst / _MICRO:.6f}° "
                                 f"({100 * worst / abs(step):.1f} % of a cell) off the file's 0.01° grid "
                                 f"(first {name} {first / _MICRO:.6f}°); expected within {GRID_TOLERANCE:.0%} "
                                 "of a cell")
    if idx.min() < 0 or idx.max() >= n:
        ends = sorted((first / _MICRO, (first + (n - 1) * step) / _MICRO))
        raise reader_error(path, f"box {name} {target[0]:.3f}..{target[-1]:.3f} is not inside the file's {name} "
                                 f"grid (centres {ends[0]:.3f}..{ends[1]:.3f})")
    if idx[-1] >= idx[0]:
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return slice(int(idx[0]), int(idx[-1]) - 1 if idx[-1] > 0 else None, -1)  # file scans the other way


def _as_grid(values: np.ndarray, grid: dict[str, int], path: Path) -> np.ndarray:
    """View the decoded 1-D values as (Nj, Ni) = (row along j, column along i)."""
    if values.size != grid["ni"] * grid["nj"]:
        raise reader_error(path, f"decoded {values.size} values; expected Ni x Nj = {grid['ni'] * grid['nj']}")
    if grid["j_consecutive"]:
        return values.reshape(grid["ni"], grid["nj"]).T
    return values.reshape(grid["nj"], grid["ni"])


def _dataset(values: np.ndarray, valid: pd.Timestamp, lat, lon, product: str, path: Path) -> xr.Dataset:
    rate = product in RATE_PRODUCTS
    return make_dataset(values[np.newaxis], np.array([valid.to_datetime64()]), lat, lon, kind="radar",
                        source=f"NOAA MRMS {product}",
                        long_name="radar precipitation rate (instantaneous, 2-min product)" if rate else None,
                        attrs={"source_file": path.name, "mrms_product": product,
                               "time_convention": "time = valid time (instantaneous rate)" if rate
                               else "time = end of the 1-h accumulation, UTC"})
