"""Downloads against a local fsspec filesystem laid out like s3://noaa-mrms-pds and a stub earthaccess."""

from __future__ import annotations

import sys
import types

import fsspec
import pandas as pd
import pytest

from precipdiff.data.download import download_imerg, download_mrms, mrms_day_prefix
from precipdiff.data.errors import ReaderError
from precipdiff.data.mrms import parse_name, read_mrms

PASS2 = "MultiSensor_QPE_01H_Pass2"
SMALL = {"lat_min": 43.0, "lat_max": 43.5, "lon_min": -92.0, "lon_max": -91.0}


@pytest.fixture
def bucket(tmp_path, make_grib):
    """``<tmp>/noaa-mrms-pds/CONUS/<Product>_00.00/<YYYYMMDD>/MRMS_<Product>_00.00_<stamp>.grib2.gz``."""
    root = tmp_path / "noaa-mrms-pds"
    for valid in ("2023-01-01 23:00", "2023-01-02 00:00", "2023-01-02 00:02", "2023-01-02 01:00", "2023-01-02 05:00"):
        stamp = pd.Timestamp(valid)
        make_grib(valid=stamp, gz=True, directory=root / "CONUS" / f"{PASS2}_00.00" / f"{stamp:%Y%m%d}")
    return root


class CountingFS:
    """A local fsspec filesystem that counts the copies it makes."""

    def __init__(self):
        self.fs, self.copies = fsspec.filesystem("file"), 0

    def ls(self, path, detail=False):
        return self.fs.ls(path, detail=detail)

    def get(self, remote, local):
        self.copies += 1
        self.fs.get(remote, local)


def test_bucket_layout():
    assert mrms_day_prefix(PASS2, pd.Timestamp("2023-01-02 05:00")) == (
        "noaa-mrms-pds/CONUS/MultiSensor_QPE_01H_Pass2_00.00/20230102")


def test_download_period_top_of_hour_and_skip_existing(bucket, tmp_path):
    fs, dest = CountingFS(), tmp_path / "raw"
    paths = download_mrms(PASS2, "2023-01-01 23:00", "2023-01-02 01:00", dest, fs=fs, bucket=str(bucket))
    # 23:00 (day 1), 00:00 and 01:00 (day 2); not the 00:02 rolling sum nor 05:00 (after the end)
    assert [parse_name(p)[1] for p in paths] == list(pd.to_datetime(["2023-01-01 23:00", "2023-01-02 00:00",
                                                                     "2023-01-02 01:00"]))
    assert fs.copies == 3 and not list(dest.glob("*.part"))
    assert read_mrms(paths[1], SMALL)["time"].values[0] == pd.Timestamp("2023-01-02 00:00").to_datetime64()
    again = download_mrms(PASS2, "2023-01-01 23:00", "2023-01-02 01:00", dest, fs=fs, bucket=str(bucket))
    assert again == paths and fs.copies == 3  # nothing fetched twice


def test_download_nothing_found_names_the_folders(bucket, tmp_path):
    with pytest.raises(ReaderError, match="no MultiSensor_QPE_01H_Pass2 file valid") as info:
        download_mrms(PASS2, "2019-06-01", "2019-06-01 03:00", tmp_path / "raw", fs=fsspec.filesystem("file"),
                      bucket=str(bucket))
    assert "20190601" in str(info.value)


def test_download_unknown_product(tmp_path):
    with pytest.raises(ReaderError, match="unsupported product 'QPE'"):
        download_mrms("QPE", "2023-01-01", "2023-01-02", tmp_path, fs=fsspec.filesystem("memory"))


def test_s3fs_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs -> ImportError
    with pytest.raises(ImportError, match="pip install s3fs"):
        download_mrms(PASS2, "2023-01-01", "2023-01-01 01:00", tmp_path)


def test_download_imerg_with_stub_earthaccess(tmp_path, monkeypatch):
    calls = {}

    def search_data(**query):
        calls["query"] = query
        return ["granule-1", "granule-2"]

    def download(granules, local_path):
        calls["download"] = (granules, local_path)
        return [f"{local_path}/3B-HHR.MS.MRG.3IMERG.20230101-S00{i}000-E00{i}2959.0000.V07B.HDF5" for i in (3, 0)]

    stub = types.SimpleNamespace(login=lambda: types.SimpleNamespace(authenticated=True),
                                 search_data=search_data, download=download)
    monkeypatch.setitem(sys.modules, "earthaccess", stub)
    box = {"lat_min": 42.23, "lat_max": 44.8, "lon_min": -94.2, "lon_max": -89.0}
    paths = download_imerg("GPM_3IMERGHH", "2023-01-01", "2023-01-01 01:00", box, tmp_path / "imerg")
    assert calls["query"] == {"short_name": "GPM_3IMERGHH", "version": "07",
                              "temporal": ("2023-01-01T00:00:00", "2023-01-01T01:00:00"),
                              "bounding_box": (-94.2, 42.3, -89.0, 44.8)}  # W, S, E, N of the snapped box
    assert calls["download"] == (["granule-1", "granule-2"], str(tmp_path / "imerg"))
    assert [p.name.split(".")[4][9:16] for p in paths] == ["S000000", "S003000"]  # sorted by time


def test_download_imerg_without_granules_or_login(tmp_path, monkeypatch):
    stub = types.SimpleNamespace(login=lambda: types.SimpleNamespace(authenticated=True),
                                 search_data=lambda **q: [], download=None)
    monkeypatch.setitem(sys.modules, "earthaccess", stub)
    with pytest.raises(ReaderError, match="no GPM_3IMERGHHE granule"):
        download_imerg("GPM_3IMERGHHE", "2023-01-01", "2023-01-02", SMALL, tmp_path)
    stub.login = lambda: types.SimpleNamespace(authenticated=False)
    with pytest.raises(PermissionError, match="Earthdata login failed"):
        download_imerg("GPM_3IMERGHHE", "2023-01-01", "2023-01-02", SMALL, tmp_path)


def test_earthaccess_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "earthaccess", None)
    with pytest.raises(ImportError, match="pip install earthaccess"):
        download_imerg("GPM_3IMERGHH", "2023-01-01", "2023-01-02", SMALL, tmp_path)
