"""Fixtures of the real-data reader tests: the shared real files and writers of small files laid out
exactly like the archives (GES DISC IMERG HDF5/netCDF4, MRMS GRIB2)."""

from __future__ import annotations

import gzip
from pathlib import Path

import eccodes
import h5py
import netCDF4
import numpy as np
import pandas as pd
import pytest

from precipdiff.data.mrms import PRODUCTS, read_mrms

SHARED = Path(__file__).parents[2] / ".." / "shared" / "data"
MRMS_DIR = SHARED / "mrms" / "gaugecorr_qpe_01h"
IMERG_REAL = SHARED / "imerg" / "3B-HHR-E.MS.MRG.3IMERG.20151001-S000000-E002959.0000.V03E.RT-H5"
# README of the shared data: wettest 2.56° box on 2016-09-22, Iowa–Minnesota–Wisconsin
IOWA = {"lat_min": 42.2, "lat_max": 44.8, "lon_min": -94.2, "lon_max": -89.0}
REAL_TIMES = ("20160922-120000", "20160922-130000")
# small box used with the synthetic files: 5 x 10 satellite cells, 50 x 100 radar cells
SMALL = {"lat_min": 43.0, "lat_max": 43.5, "lon_min": -92.0, "lon_max": -91.0}
FILL = np.float32(-9999.9)  # IMERG _FillValue (CodeMissingValue "-9999.9")


def field(lat, lon):
    """Known positive test field f(lat, lon) in mm/h, written into every synthetic file."""
    return (np.asarray(lat) - 40.0) + (np.asarray(lon) + 100.0) / 100.0


@pytest.fixture(scope="session")
def iowa_box() -> dict[str, float]:
    """Box of the real-data tests (wet on 2016-09-22, shared data README)."""
    return dict(IOWA)


@pytest.fixture(scope="session")
def small_box() -> dict[str, float]:
    """Box of the synthetic-file tests: 5 x 10 satellite cells, 50 x 100 radar cells."""
    return dict(SMALL)


@pytest.fixture(scope="session")
def known_field():
    """The function :func:`field` written into every synthetic file."""
    return field


# ---------------------------------------------------------------- real shared data


@pytest.fixture(scope="session")
def mrms_real_paths() -> list[Path]:
    paths = [MRMS_DIR / f"MRMS_GaugeCorr_QPE_01H_00.00_{stamp}.grib2" for stamp in REAL_TIMES]
    if not all(p.exists() for p in paths):
        pytest.skip(f"shared MRMS data not found in {MRMS_DIR}")
    return paths


@pytest.fixture(scope="session")
def mrms_real(mrms_real_paths) -> dict[Path, object]:
    """The Iowa box of two real MRMS files, decoded once per session."""
    return {path: read_mrms(path, IOWA) for path in mrms_real_paths}


@pytest.fixture(scope="session")
def imerg_real_path() -> Path:
    if not IMERG_REAL.exists():
        pytest.skip(f"shared IMERG file not found: {IMERG_REAL}")
    return IMERG_REAL


# ---------------------------------------------------------------- MRMS GRIB2 writer


def write_grib(path: Path, values: np.ndarray, *, parameter: int, valid: pd.Timestamp, north: float,
               west: float, bitmap_value: float | None = None) -> Path:
    """One MRMS-like GRIB2 message: discipline 209 / category 6, PNG packing, 0.01° grid scanning
    north -> south from the cell centred at (north - 0.005, west + 0.005), lon in 0..360 like MRMS."""
    nj, ni = values.shape
    handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    lat0, lon0 = round(north - 0.005, 3), round((west + 0.005) % 360, 3)
    for key, value in [("centre", 161), ("discipline", 209), ("parameterCategory", 6), ("parameterNumber", parameter),
                       ("typeOfFirstFixedSurface", 102), ("Ni", ni), ("Nj", nj),
                       ("latitudeOfFirstGridPointInDegrees", lat0), ("longitudeOfFirstGridPointInDegrees", lon0),
                       ("latitudeOfLastGridPointInDegrees", round(lat0 - 0.01 * (nj - 1), 3)),
                       ("longitudeOfLastGridPointInDegrees", round(lon0 + 0.01 * (ni - 1), 3)),
                       ("iDirectionIncrementInDegrees", 0.01), ("jDirectionIncrementInDegrees", 0.01),
                       ("dataDate", int(f"{valid:%Y%m%d}")), ("dataTime", int(f"{valid:%H%M}")),
                       # MRMS packs with PNG; eccodes cannot PNG-pack a constant field from this sample
                       ("packingType", "grid_simple" if np.ptp(values) == 0 else "grid_png"),
                       ("decimalScaleFactor", 1), ("bitsPerValue", 16)]:
        eccodes.codes_set(handle, key, value)
    if bitmap_value is not None:
        eccodes.codes_set(handle, "bitmapPresent", 1)
        eccodes.codes_set(handle, "missingValue", bitmap_value)
    eccodes.codes_set_values(handle, np.asarray(values, dtype=np.float64).ravel())
    message = eccodes.codes_get_message(handle)
    eccodes.codes_release(handle)
    path.write_bytes(gzip.compress(message) if path.name.endswith(".gz") else message)
    return path


@pytest.fixture
def make_grib(tmp_path):
    """``make_grib(values=None, product=..., valid=..., gz=False, ...)`` -> path of a synthetic MRMS file.

    By default the grid spans lat 42.5–44.0, lon -92.5 to -90.5 (150 x 200 cells) and holds
    :func:`field` rounded to 0.1 mm (PNG packing with decimal scale 1).
    """

    def make(values=None, *, product="MultiSensor_QPE_01H_Pass2", valid="2023-01-01 01:00", gz=False,
             north=44.0, west=-92.5, name_time=None, parameter=None, bitmap_value=None, directory=None):
        valid = pd.Timestamp(valid)
        if values is None:
            lat = north - 0.005 - 0.01 * np.arange(150)
            lon = west + 0.005 + 0.01 * np.arange(200)
            values = np.round(field(lat[:, None], lon[None, :]), 1)
        stamp = pd.Timestamp(name_time or valid)
        name = f"MRMS_{product}_00.00_{stamp:%Y%m%d-%H%M%S}.grib2" + (".gz" if gz else "")
        folder = Path(directory or tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        return write_grib(folder / name, values, parameter=parameter or PRODUCTS.get(product, 37), valid=valid,
                          north=north, west=west, bitmap_value=bitmap_value)

    return make


# ---------------------------------------------------------------- IMERG writers (GES DISC layouts)

_GRID_HEADER = ("BinMethod=ARITHMETIC_MEAN;\nRegistration=CENTER;\nLatitudeResolution=0.1;\nLongitudeResolution=0.1;\n"
                "NorthBoundingCoordinate=90;\nSouthBoundingCoordinate=-90;\nEastBoundingCoordinate=180;\n"
                "WestBoundingCoordinate=-180;\nOrigin=SOUTHWEST;\n")
# region where the synthetic files hold data (the rest of the global grid is _FillValue)
REGION = {"lat": (40.0, 47.0), "lon": (-96.0, -87.0)}
GLOBAL_LAT = np.round(-89.95 + 0.1 * np.arange(1800), 2).astype(np.float32)
GLOBAL_LON = np.round(-179.95 + 0.1 * np.arange(3600), 2).astype(np.float32)


def imerg_name(start: pd.Timestamp, run: str = "", version: str = "V07B", ext: str = "HDF5") -> str:
    """GES DISC/PPS name ``3B-HHR[-E|-L].MS.MRG.3IMERG.YYYYMMDD-SHHMMSS-EHHMMSS.MMMM.VvvX.ext``."""
    end = start + pd.Timedelta(minutes=29, seconds=59)
    minutes = start.hour * 60 + start.minute
    return f"3B-HHR{run}.MS.MRG.3IMERG.{start:%Y%m%d}-S{start:%H%M%S}-E{end:%H%M%S}.{minutes:04d}.{version}.{ext}"


def file_header(start: pd.Timestamp, name: str, version: str, interval: str = "HALF_HOUR") -> str:
    """The PPS ``FileHeader`` root attribute (``key=value;`` lines, as in the V07B files at GES DISC)."""
    stop = start + pd.Timedelta(minutes=29, seconds=59)
    return (f"DOI=10.5067/GPM/IMERG/3B-HH/07;\nDOIauthority=http://dx.doi.org/;\nDOIshortName=3IMERGHH;\n"
            f"AlgorithmID=3IMERGHH;\nAlgorithmVersion=3IMERGH_7.0;\nFileName={name};\nSatelliteName=MULTI;\n"
            f"InstrumentName=MERGED;\nGenerationDateTime=2024-01-01T00:00:00.000Z;\n"
            f"StartGranuleDateTime={start:%Y-%m-%dT%H:%M:%S}.000Z;\n"
            f"StopGranuleDateTime={stop:%Y-%m-%dT%H:%M:%S}.999Z;\n"
            f"GranuleNumber=;\nNumberOfSwaths=0;\nNumberOfGrids=1;\nGranuleStart=;\nTimeInterval={interval};\n"
            f"ProcessingSystem=PPS;\nProductVersion={version};\nEmptyGranule=NOT_EMPTY;\nMissingData=;\n")


def _strings(obj, **attrs) -> None:
    for key, value in attrs.items():
        obj.attrs[key] = np.bytes_(value)  # PPS writes fixed-length ASCII attributes


def _coord(group, name: str, values, units: str, long_name: str):
    axis = {"lat": "Y", "lon": "X", "time": "T"}[name]
    ds = group.create_dataset(name, data=values)
    _strings(ds, DimensionNames=name, Units=units, units=units, standard_name="latitude" if name == "lat" else
             "longitude" if name == "lon" else "time", LongName=long_name, bounds=f"{name}_bnds", axis=axis)
    ds.make_scale(name)
    return ds


def _region_slices():
    i = np.flatnonzero((GLOBAL_LON > REGION["lon"][0]) & (GLOBAL_LON < REGION["lon"][1]))
    j = np.flatnonzero((GLOBAL_LAT > REGION["lat"][0]) & (GLOBAL_LAT < REGION["lat"][1]))
    return slice(i[0], i[-1] + 1), slice(j[0], j[-1] + 1)


def write_imerg_hdf5(path: Path, start: pd.Timestamp, *, variable: str, epoch: str, version: str,
                     time_axis: bool = True, interval: str = "HALF_HOUR", time_offset_s: int = 0) -> Path:
    """Global IMERG HDF5 as PPS/GES DISC write it: /Grid/<variable> (time, lon, lat) with dimension
    scales, ``DimensionNames``, ``Units``/``units``, ``_FillValue`` -9999.9 and ``CodeMissingValue``;
    ``Grid/time`` int32 "seconds since <epoch> UTC". ``time_axis=False`` writes the old 2-D layout."""
    with h5py.File(path, "w") as h5:
        _strings(h5, FileHeader=file_header(start, path.name, version, interval),
                 FileInfo="DataFormatVersion=7e;\nFormatPackage=HDF5-1.10.9;\nMetadataStyle=PVL;\n"
                          "EndianType=LITTLE_ENDIAN;\n")
        grid = h5.create_group("Grid")
        _strings(grid, GridHeader=_GRID_HEADER)
        lon = _coord(grid, "lon", GLOBAL_LON, "degrees_east", "Longitude at the center of 0.10 degree grid intervals")
        lat = _coord(grid, "lat", GLOBAL_LAT, "degrees_north", "Latitude at the center of 0.10 degree grid intervals")
        scales = [lon, lat]
        if time_axis:
            seconds = int((start - pd.Timestamp(epoch)).total_seconds()) + time_offset_s
            time = _coord(grid, "time", np.array([seconds], dtype=np.int32), f"seconds since {epoch} UTC",
                          f"Representative time of data in seconds since {epoch} UTC.")
            _strings(time, calendar="julian")
            scales = [time, *scales]
        _bounds(grid, scales)
        _precipitation(grid, variable, scales)
        if version.startswith("V07"):  # V07 moved the other estimates to Grid/Intermediate
            inter = grid.create_group("Intermediate")
            inter.create_dataset("precipitationUncal", shape=(1, 3600, 1800), dtype=np.float32, fillvalue=FILL)
    return path


def _bounds(group, scales: list) -> None:
    """``lat_bnds`` (lat, latv), ``lon_bnds`` (lon, lonv), ``time_bnds`` (time, nv), as in V07 files."""
    for scale in scales:
        name = Path(scale.name).name
        low, high = (0, 1800) if name == "time" else (-0.05, 0.05)  # the half hour (s) / the cell (degrees)
        values = np.stack([scale[...] + low, scale[...] + high], axis=1).astype(scale.dtype)
        bounds = group.create_dataset(f"{name}_bnds", data=values)
        vertex = {"lat": "latv", "lon": "lonv", "time": "nv"}[name]
        _strings(bounds, DimensionNames=f"{name},{vertex}", coordinates=f"{name} {vertex}")


def _precipitation(group, variable: str, scales: list) -> None:
    dims = ",".join(Path(s.name).name for s in scales)
    shape = tuple(s.shape[0] for s in scales)
    var = group.create_dataset(variable, shape=shape, dtype=np.float32, fillvalue=FILL, compression="gzip",
                               chunks=(1, 145, 1800)[-len(shape):])
    _strings(var, DimensionNames=dims, Units="mm/hr", units="mm/hr", coordinates=dims.replace(",", " "),
             CodeMissingValue="-9999.9", LongName="Complete merged microwave-infrared (gauge-adjusted) estimate")
    var.attrs["_FillValue"] = FILL
    for axis, scale in enumerate(scales):
        var.dims[axis].attach_scale(scale)
    lon_s, lat_s = _region_slices()
    block = field(GLOBAL_LAT[lat_s][None, :], GLOBAL_LON[lon_s][:, None]).astype(np.float32)  # (lon, lat)
    block[0, 0], block[1, 1] = FILL, -1.0  # a fill value and a negative: both must read as NaN
    var[(0,) * (len(shape) - 2) + (lon_s, lat_s)] = block


def write_imerg_subset(path: Path, start: pd.Timestamp, *, epoch: str = "1980-01-06 00:00:00",
                       dimension_names: bool = True, lat_descending: bool = False) -> Path:
    """GES DISC netCDF4 subset: variables flat at the root, lat/lon already cut to REGION."""
    lon_s, lat_s = _region_slices()
    lat, lon = GLOBAL_LAT[lat_s], GLOBAL_LON[lon_s]
    lat = lat[::-1] if lat_descending else lat
    with netCDF4.Dataset(path, "w") as nc:
        for name, size in (("time", None), ("lon", lon.size), ("lat", lat.size)):
            nc.createDimension(name, size)
        for name, values, units in (("lon", lon, "degrees_east"), ("lat", lat, "degrees_north")):
            var = nc.createVariable(name, "f4", (name,))
            var[:] = values
            var.setncatts({"units": units, "Units": units})
        time = nc.createVariable("time", "i4", ("time",))
        time[:] = [int((start - pd.Timestamp(epoch)).total_seconds())]
        time.setncatts({"units": f"seconds since {epoch} UTC", "standard_name": "time", "calendar": "julian"})
        var = nc.createVariable("precipitation", "f4", ("time", "lon", "lat"), fill_value=FILL)
        attrs = {"units": "mm/hr", "Units": "mm/hr", "CodeMissingValue": "-9999.9"}
        var.setncatts({**attrs, **({"DimensionNames": "time,lon,lat"} if dimension_names else {})})
        var[0] = field(lat[None, :], lon[:, None])
    return path


@pytest.fixture
def make_imerg(tmp_path):
    """``make_imerg(layout, start, directory=None, **kw)`` -> path of a synthetic IMERG file.

    Layouts: ``v07`` (.HDF5, Grid/precipitation, 1980 epoch), ``v06`` (.HDF5, Grid/precipitationCal,
    1970 epoch), ``rt`` (Early run .RT-H5, V07 layout), ``v05_2d`` (no time axis: FileHeader time),
    ``subset`` / ``subset_nodims`` / ``subset_desc`` (GES DISC flat netCDF4).
    """

    def make(layout: str, start="2023-01-01 00:00", directory=None, **kw) -> Path:
        start = pd.Timestamp(start)
        folder = Path(directory or tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        if layout.startswith("subset"):
            name = imerg_name(start, ext="HDF5.nc4")
            return write_imerg_subset(folder / name, start, dimension_names=layout != "subset_nodims",
                                      lat_descending=layout == "subset_desc", **kw)
        spec = {"v07": ("", "V07B", "HDF5", "precipitation", "1980-01-06 00:00:00", True),
                "v06": ("", "V06B", "HDF5", "precipitationCal", "1970-01-01 00:00:00", True),
                "rt": ("-E", "V07B", "RT-H5", "precipitation", "1980-01-06 00:00:00", True),
                "v05_2d": ("-L", "V05B", "RT-H5", "precipitationCal", "1970-01-01 00:00:00", False)}[layout]
        run, version, ext, variable, epoch, time_axis = spec
        return write_imerg_hdf5(folder / imerg_name(start, run, version, ext), start, variable=variable,
                                epoch=epoch, version=version, time_axis=time_axis, **kw)

    return make
