"""A large domain (``ingestion.domain.kind: grid``) from GRIB2 files written by the tests: two regions,
radar gaps, the kept box-hours as stacks with their region and time, bounded memory."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipdiff.data import boxes as bx
from precipdiff.data import files
from tests.conftest import make_project_copy, run_kedro
from tests.data.conftest import write_grib

NORTH, WEST = 42.8, -92.0  # the files' grid: 80 x 120 cells of 0.01°, 42.0–42.8 N, 92.0–90.8 W
REGIONS = {"west": {"lat_min": 40.0, "lat_max": 45.0, "lon_min": -95.0, "lon_max": -91.4},
           "east": {"lat_min": 40.0, "lat_max": 45.0, "lon_min": -91.4, "lon_max": -88.0}}
HOURS = [*pd.date_range("2023-01-01 01:00", periods=6, freq="h"), *pd.date_range("2023-01-02 01:00", periods=2, freq="h")]
# 40-cell boxes, 2 rows x 3 columns (row 0 is the southern one):
#   r00c00 west, wet            -> kept
#   r00c01 east, wet, 5 % gap   -> kept, the gap stays missing
#   r00c02 east, wet, 20 % gap  -> dropped (coverage 0.8 < 0.9)
#   r01c00 west, dry            -> dropped
#   r01c01 east, 3 % wet        -> dropped (< 5 %)
#   r01c02 east, wet            -> kept
KEPT = ["r00c00", "r00c01", "r01c02"]


def _field(hour: int) -> np.ndarray:
    """South-up (42.0 N first) rates in mm, MRMS codes -3 where a radar has no coverage."""
    rng = np.random.default_rng(hour)
    f = np.zeros((80, 120))
    wet = rng.gamma(0.8, 2.0, (80, 120)) * (rng.random((80, 120)) < 0.3)
    f[0:40, 0:40], f[0:40, 40:80], f[0:40, 80:120], f[40:80, 80:120] = (wet[0:40, 0:40], wet[0:40, 40:80],
                                                                        wet[0:40, 80:120], wet[40:80, 80:120])
    f[40, 40:88] = 1.0  # 48 of 1600 cells of r01c01 wet: 3 %
    f[0:2, 40:80] = -3.0  # 80 cells (5 %) of r00c01 without coverage
    f[0:8, 80:120] = -3.0  # 320 cells (20 %) of r00c02
    return np.round(f, 1)


@pytest.fixture(scope="module")
def mrms_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mrms")
    for t in HOURS:
        write_grib(folder / f"MRMS_MultiSensor_QPE_01H_Pass2_00.00_{t:%Y%m%d-%H%M%S}.grib2", _field(t.hour + t.day)[::-1],
                   parameter=37, valid=t, north=NORTH, west=WEST)
    return folder


def _params(mrms_dir) -> dict:
    return {"ingestion": {"source": "radar_simulated_satellite", "period": {"start": None},
                          "regions": REGIONS, "files": {"mrms_dir": str(mrms_dir)},
                          "domain": {"kind": "grid", "box_cells": 40, "regions": ["west", "east"],
                                     "keep": {"min_coverage": 0.9, "min_wet_fraction": 0.05, "wet_threshold_mm_h": 0.1}}},
            "preprocessing": {"split": {"fractions": {"train": 0.5, "validation": 0.25, "test": 0.25}, "gap_hours": 0},
                              "patches": {"coarse": {"size": 4, "stride": 4}, "fine": {"size": 20, "stride": 20}}}}


@pytest.fixture(scope="module")
def project(tmp_path_factory, mrms_dir):
    project = make_project_copy(tmp_path_factory.mktemp("large_domain"))
    run_kedro(project, ["ingestion", "preprocessing"], params=_params(mrms_dir))
    return project


def test_kept_box_hours_carry_their_box_region_and_time(project):
    radar = xr.open_dataset(project / "data/02_intermediate/radar.nc").load()
    sat = xr.open_dataset(project / "data/02_intermediate/satellite.nc").load()
    bx.validate_stack_pair(sat, radar)
    assert radar.sizes == {"sample": 3 * len(HOURS), "y": 40, "x": 40}
    assert sorted(set(radar["box"].values)) == KEPT
    by_box = dict(zip(radar["box"].values, radar["region"].values))
    assert by_box == {"r00c00": "west", "r00c01": "east", "r01c02": "east"}
    assert sorted(set(pd.to_datetime(radar["time"].values))) == HOURS
    one = bx.box_dataset(radar, "r00c00", "radar")
    hour = int(np.flatnonzero(pd.to_datetime(one.time.values) == HOURS[0])[0])
    np.testing.assert_allclose(one.precipitation.values[hour], _field(HOURS[0].hour + 1)[0:40, 0:40], atol=1e-4)


def test_a_radar_gap_is_masked_never_filled(project):
    radar = xr.open_dataset(project / "data/03_primary/radar.nc").load()
    sat = xr.open_dataset(project / "data/03_primary/satellite.nc").load()
    gap = radar["box"].values == "r00c01"
    values = radar.precipitation.values[gap]
    assert np.isnan(values[:, 0:2, :]).all() and np.isfinite(values[:, 2:, :]).all()
    assert np.isnan(sat.precipitation.values[gap][:, 0, :]).all()  # 0.1° cells over the gap: missing too
    assert np.isfinite(sat.precipitation.values[~gap]).all()  # the simulated satellite of every other box-hour


def test_model_inputs_and_patches_keep_regions_and_the_chronological_split(project):
    fine = xr.open_dataset(project / "data/05_model_input/fine.nc").load()
    patches = pd.read_parquet(project / "data/05_model_input/fine_patches.parquet")
    split = pd.Series(fine["split"].values, index=pd.to_datetime(fine["time"].values))
    assert split.groupby(level=0).nunique().max() == 1  # every box of an hour shares its split
    assert split.index[split == "train"].max() < split.index[split == "test"].min()
    assert set(patches["region"]) == {"west", "east"}
    gap_patches = patches[fine["box"].values[patches["sample_index"]] == "r00c01"]
    assert gap_patches["valid_fraction"].min() == pytest.approx(1 - 40 / 400)  # 2 of 20 rows missing


def test_the_day_cache_is_reused(project, mrms_dir):
    days = sorted((project / "data/01_raw/days").rglob("*.nc"))
    assert [d.name for d in days] == ["2023-01-01.nc", "2023-01-02.nc"]
    stamps = [d.stat().st_mtime_ns for d in days]
    run_kedro(project, ["ingestion"], params=_params(mrms_dir))
    assert [d.stat().st_mtime_ns for d in days] == stamps


def test_ingestion_holds_one_decoded_field_at_a_time(mrms_dir, monkeypatch):
    """Memory is bounded whatever the domain: each radar file is decoded, cut and dropped before the next
    (here one worker); reading every field first and cutting afterwards would hold all of them."""
    alive, most = set(), [0]

    def tracked(path, box):
        ds = real(path, box)
        key = id(ds)
        alive.add(key)
        weakref.finalize(ds, alive.discard, key)
        most[0] = max(most[0], len(alive))
        return ds

    real = files.read_mrms
    monkeypatch.setattr(files, "read_mrms", tracked)
    layout = bx.layout({"lat_min": 42.0, "lat_max": NORTH, "lon_min": WEST, "lon_max": -90.8}, 40, REGIONS)
    paths = sorted(mrms_dir.glob("*20230101*.grib2"))
    _, radar, report = files.ingest_day_boxes([], paths, layout, _params(None)["ingestion"]["domain"]["keep"],
                                              scheduler="synchronous")
    assert report["box_hours_seen"] == 6 * len(paths) and report["box_hours"] == 3 * len(paths)
    assert most[0] == 1, f"{most[0]} decoded fields were alive at once"
