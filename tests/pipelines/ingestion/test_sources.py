"""The file sources through a real KedroSession: real MRMS files, IMERG files written by the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipdiff.data import contract
from tests.conftest import SHARED_DATA, make_project_copy, run_kedro
from tests.data.conftest import field, write_imerg_hdf5, imerg_name

MRMS_DIR = SHARED_DATA / "mrms" / "gaugecorr_qpe_01h"
BOX = {"lat_min": 42.5, "lat_max": 42.8, "lon_min": -93.0, "lon_max": -92.7}
pytestmark = pytest.mark.skipif(not MRMS_DIR.is_dir(), reason="shared MRMS files not available")


@pytest.fixture
def mrms_dir(tmp_path):
    """Three real hourly MRMS files (valid 2016-09-22 01:00–03:00) linked into a folder."""
    folder = tmp_path / "mrms"
    folder.mkdir()
    for hour in (1, 2, 3):
        name = f"MRMS_GaugeCorr_QPE_01H_00.00_20160922-{hour:02d}0000.grib2"
        (folder / name).symlink_to(MRMS_DIR / name)
    return folder


def _params(source: str, mrms_dir, imerg_dir=None) -> dict:
    return {"ingestion": {"source": source, "box": BOX, "period": {"start": None},
                          "files": {"mrms_dir": str(mrms_dir), "imerg_dir": str(imerg_dir) if imerg_dir else None}}}


def _outputs(project):
    return (xr.open_dataset(project / "data/02_intermediate/satellite.nc"),
            xr.open_dataset(project / "data/02_intermediate/radar.nc"))


def test_radar_simulated_satellite_and_day_cache(tmp_path, mrms_dir):
    project = make_project_copy(tmp_path / "project")
    run_kedro(project, ["ingestion"], params=_params("radar_simulated_satellite", mrms_dir))
    sat, radar = _outputs(project)
    contract.validate_pair(sat, radar)
    assert list(pd.to_datetime(radar.time.values).hour) == [1, 2, 3] and radar.sizes["lat"] == 30
    assert np.isfinite(sat.precipitation.values).all()
    day_files = list((project / "data/01_raw/days").rglob("*.nc"))
    assert len(day_files) == 1 and day_files[0].name == "2016-09-22.nc"
    stamp = day_files[0].stat().st_mtime_ns
    run_kedro(project, ["ingestion"], params=_params("radar_simulated_satellite", mrms_dir))
    assert day_files[0].stat().st_mtime_ns == stamp  # the cached day was not ingested again
    other = _params("radar_simulated_satellite", mrms_dir)
    other["ingestion"]["seed"] = 5  # another fingerprint: a new partition, the old one untouched
    run_kedro(project, ["ingestion"], params=other)
    assert len(list((project / "data/01_raw/days").rglob("*.nc"))) == 2


def test_files_source_pairs_imerg_half_hours_with_mrms_hours(tmp_path, mrms_dir):
    imerg_dir = tmp_path / "imerg"
    imerg_dir.mkdir()
    for start in pd.date_range("2016-09-22 00:00", periods=6, freq="30min"):
        write_imerg_hdf5(imerg_dir / imerg_name(start), start, variable="precipitation",
                         epoch="1980-01-06 00:00:00", version="V07B")
    project = make_project_copy(tmp_path / "project")
    run_kedro(project, ["ingestion"], params=_params("files", mrms_dir, imerg_dir))
    sat, radar = _outputs(project)
    contract.validate_pair(sat, radar)
    assert list(pd.to_datetime(sat.time.values).hour) == [1, 2, 3]
    expected = field(sat.lat.values[:, None], sat.lon.values[None, :])
    np.testing.assert_allclose(sat.precipitation.values, np.broadcast_to(expected, (3, 3, 3)), rtol=1e-5)


def test_empty_mrms_directory_is_named(tmp_path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    project = make_project_copy(tmp_path / "project")
    with pytest.raises(Exception, match="nothing"):
        run_kedro(project, ["ingestion"], params=_params("radar_simulated_satellite", empty))
