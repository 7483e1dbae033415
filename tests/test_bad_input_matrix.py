"""The bad-input matrix (issue #13): every way a new user can feed precipdiff a wrong file, box, period,
directory, count, fraction, source, output, model or time range, each through the function, node or CLI
entry that meets it first.

Each case asserts that the error has the expected type and that its message names the file or the
parameter, says what was expected and what was found (three fragments), and that nothing partial is
left behind: the case's directory holds exactly what it held before the call. ``pytest -s`` prints
every message (the list in ``docs/readers.md`` is copied from it).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from precipdiff.data.align import intersect_times
from precipdiff.data.contract import ContractError, grid_for_box, make_dataset, snap_box
from precipdiff.data.errors import ReaderError
from precipdiff.data.files import discover
from precipdiff.data.imerg import read_imerg
from precipdiff.data.mrms import read_mrms
from precipdiff.inference.inputs import InputError, find_inputs
from precipdiff.inference.output import OutputError, check_writable
from precipdiff.pipelines.inference.nodes import check_parameters
from precipdiff.pipelines.ingestion.nodes import ingest_days
from precipdiff.pipelines.preprocessing.nodes import split_hours
from precipdiff.training.config import resolve_config
from tests.data.conftest import imerg_name, write_grib, write_imerg_hdf5, write_imerg_subset

BOX = {"lat_min": 43.0, "lat_max": 43.5, "lon_min": -92.0, "lon_max": -91.0}
MRMS_NAME = "MRMS_MultiSensor_QPE_01H_Pass2_00.00_20230101-010000.grib2"
VALID = pd.Timestamp("2023-01-01 01:00")


@dataclass
class Case:
    """``setup(tmp)`` builds the inputs and returns ``(call, named)``: the failing call and the file path
    or parameter its message must name. ``expected`` and ``found`` are fragments of the message."""

    id: str
    setup: Callable[[Path], tuple[Callable[[], object], str]]
    error: type[BaseException]
    expected: str
    found: str


# ---------------------------------------------------------------- builders


def grib(tmp: Path, name: str = MRMS_NAME, *, parameter: int = 37, valid=VALID, west: float = -92.5) -> Path:
    """A small valid MRMS-like GRIB2 (150 x 200 cells, 42.5–44.0 N, from ``west``)."""
    ramp = np.round(np.linspace(0.0, 20.0, 150 * 200).reshape(150, 200), 1)  # PNG-packed, ~30 kB
    return write_grib(tmp / name, ramp, parameter=parameter, valid=pd.Timestamp(valid), north=44.0, west=west)


def imerg(tmp: Path) -> Path:
    start = pd.Timestamp("2023-01-01 00:00")
    return write_imerg_hdf5(tmp / imerg_name(start), start, variable="precipitation", epoch="1980-01-06 00:00:00",
                            version="V07B")


def read_mrms_of(path: Path, box=BOX):
    return (lambda: read_mrms(path, box)), str(path)


def read_imerg_of(path: Path, box=BOX):
    return (lambda: read_imerg(path, box)), str(path)


def mrms_truncated(tmp):
    path = grib(tmp)
    path.write_bytes(path.read_bytes()[:-500])
    return read_mrms_of(path)


def mrms_empty(tmp):
    path = tmp / MRMS_NAME
    path.write_bytes(b"")
    return read_mrms_of(path)


def mrms_html(tmp):
    path = tmp / MRMS_NAME
    path.write_text("<?xml version='1.0'?><Error><Code>NoSuchKey</Code></Error>")
    return read_mrms_of(path)


def mrms_corrupt_gzip(tmp):
    path = tmp / (MRMS_NAME + ".gz")
    path.write_bytes(gzip.compress(grib(tmp).read_bytes())[:300])
    return read_mrms_of(path)


def mrms_product_lies(tmp):
    return read_mrms_of(grib(tmp, parameter=9))  # GaugeCorr content under a MultiSensor Pass2 name


def mrms_time_disagrees(tmp):
    return read_mrms_of(grib(tmp, valid="2023-01-01 02:00"))  # the name says 01:00


def mrms_unknown_product(tmp):
    path = tmp / "MRMS_MergedReflectivityQCComposite_00.50_20230101-010000.grib2"
    path.write_bytes(grib(tmp).read_bytes())
    return read_mrms_of(path)


def mrms_off_grid(tmp):
    return read_mrms_of(grib(tmp, west=-92.5 + 0.003))  # origin 0.003° = 30 % of a cell off the grid


def mrms_box_outside(tmp):
    return read_mrms_of(grib(tmp), {"lat_min": 30.0, "lat_max": 30.5, "lon_min": -92.0, "lon_max": -91.0})


def imerg_without_variable(tmp):
    path = tmp / imerg_name(pd.Timestamp("2023-01-01"))
    with h5py.File(path, "w") as h5:
        h5.create_dataset("Grid/randomError", data=np.zeros((2, 2), np.float32))
    return read_imerg_of(path)


def imerg_other_units(tmp):
    path = imerg(tmp)
    with h5py.File(path, "r+") as h5:
        h5["Grid/precipitation"].attrs["units"] = np.bytes_("mm/day")
    return read_imerg_of(path)


def imerg_not_hdf5(tmp):
    path = tmp / imerg_name(pd.Timestamp("2023-01-01"))
    path.write_text("<html>Earthdata login required</html>")
    return read_imerg_of(path)


def imerg_box_outside(tmp):
    start = pd.Timestamp("2023-01-01 00:00")
    subset = write_imerg_subset(tmp / imerg_name(start, ext="HDF5.nc4"), start)  # GES DISC cut: 40–47 N
    return read_imerg_of(subset, {"lat_min": 10.0, "lat_max": 11.0, "lon_min": -92.0, "lon_max": -91.0})


def box(bad: dict):
    return lambda tmp: ((lambda: snap_box({**BOX, **bad}, name="ingestion.box")), "ingestion.box")


def periods_do_not_overlap(tmp):
    lat, lon = grid_for_box(BOX, "satellite")

    def hours(start):
        times = pd.date_range(start, periods=3, freq="h").values
        return make_dataset(np.zeros((3, lat.size, lon.size)), times, lat, lon, kind="satellite", source="test")

    return (lambda: intersect_times(hours("2023-01-01 01:00"), hours("2023-02-01 01:00"))), "satellite and radar"


def discover_in(name: str, make: Callable[[Path], None] | None = None):
    def setup(tmp):
        folder = tmp / name
        if make:
            make(folder)
        return (lambda: discover(folder, "*.grib2")), str(folder)

    return setup


def inference_input(name: str, make: Callable[[Path], None] | None = None):
    def setup(tmp):
        folder = tmp / name
        if make:
            make(folder)
        return (lambda: find_inputs([folder])), "inference.input"

    return setup


CHAIN = {"n_members": 8, "sampler": {}, "tile": 256, "overlap": 32, "precision": "auto"}
INFERENCE = {"max_output_rate_mm_h": 300.0, "thresholds_mm_h": [0.1, 1.0], "start": None, "end": None,
             "chain": CHAIN}


def inference_params(**bad):
    params = {**INFERENCE, **bad}
    name = next(iter(bad)) if bad else "inference"
    return lambda tmp: ((lambda: check_parameters(params)), f"inference.{name}")


def inference_chain(**bad):
    params = {**INFERENCE, "chain": {**CHAIN, **bad}}
    return lambda tmp: ((lambda: check_parameters(params)), f"inference.chain.{next(iter(bad))}")


def training(**bad):
    return lambda tmp: ((lambda: resolve_config(bad)), f"training config: {next(iter(bad))}")


def split_fractions(tmp):
    times = pd.date_range("2022-01-01", periods=10, freq="h").values
    return (lambda: split_hours(times, {"train": 0.7, "validation": 0.2, "test": 0.2}, 0)), \
        "preprocessing.split.fractions"


def unknown_source(tmp):
    return (lambda: ingest_days({"source": "imerg", "box": BOX}, {})), "ingestion.source"


def unwritable_output(tmp):
    blocker = tmp / "a_file"
    blocker.write_text("x")
    return (lambda: check_writable(blocker / "out.nc")), str(blocker / "out.nc")


def output_is_a_directory(tmp):
    return (lambda: check_writable(tmp)), str(tmp)


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    """Two fresh SQLite MLflow registries: one empty (a project that never trained), one holding a
    registered model without versions or aliases."""
    from mlflow import MlflowClient

    clients = {}
    for name in ("empty", "one_model"):
        uri = f"sqlite:///{tmp_path_factory.mktemp(name) / 'mlflow.db'}"
        clients[name] = MlflowClient(tracking_uri=uri, registry_uri=uri)
    clients["one_model"].create_registered_model("precipdiff-correction")
    return clients


def missing_alias(tmp, registries):
    from precipdiff.registry import resolve_version

    client = registries["one_model"]
    return (lambda: resolve_version("precipdiff-correction", alias="champion", client=client)), \
        "registered model 'precipdiff-correction'"


def no_registry_yet(tmp, registries):
    from precipdiff.registry import resolve_version

    client = registries["empty"]
    return (lambda: resolve_version("precipdiff-correction", client=client)), "the MLflow registry at sqlite:///"


def cli_start_after_end(tmp):
    from precipdiff.cli import main

    output = tmp / "new_dir" / "out.nc"  # must not be created
    argv = ["downscale", "--input", str(tmp), "--output", str(output), "--start", "2023-07-02T00:00",
            "--end", "2023-07-01T00:00", "--project", str(Path(__file__).parents[1])]
    return (lambda: _exit_status(main, argv)), "--start 2023-07-02T00:00"


def _exit_status(main, argv):
    """The CLI prints the error and returns 1: turn that into an exception carrying the printed line."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(argv)
    if status != 0:
        raise SystemExit(err.getvalue().strip())


# ---------------------------------------------------------------- the matrix

CASES = [
    # MRMS files
    Case("mrms-truncated", mrms_truncated, ReaderError, "declares", "file holds"),
    Case("mrms-empty", mrms_empty, ReaderError, "expected one GRIB2 message", "empty file (0 bytes)"),
    Case("mrms-not-grib", mrms_html, ReaderError, "expected a 'GRIB' marker", "found b\"<?xml version='1.0'"),
    Case("mrms-corrupt-gzip", mrms_corrupt_gzip, ReaderError, "expected a complete gzip", "truncated or corrupt"),
    Case("mrms-product-lies", mrms_product_lies, ReaderError, "(GRIB2 parameter (209, 6, 37))",
         "holds parameter (209, 6, 9)"),
    Case("mrms-time-disagrees", mrms_time_disagrees, ReaderError, "the file name's 2023-01-01 01:00:00",
         "GRIB valid time 2023-01-01 02:00:00"),
    Case("mrms-unknown-product", mrms_unknown_product, ReaderError, "supported: [", "'MergedReflectivityQCComposite'"),
    Case("mrms-off-grid", mrms_off_grid, ReaderError, "expected within 1% of a cell", "(30.0 % of a cell)"),
    Case("mrms-box-outside", mrms_box_outside, ReaderError, "(centres 42.505..43.995)", "box lat 30.005..30.495"),
    # IMERG files
    Case("imerg-no-variable", imerg_without_variable, ReaderError, "['precipitation', 'precipitationCal']",
         "datasets found: ['Grid/randomError']"),
    Case("imerg-other-units", imerg_other_units, ReaderError, "expected a rate in mm/hr", "units 'mm/day'"),
    Case("imerg-not-hdf5", imerg_not_hdf5, ReaderError, "IMERG comes as HDF5", "not an HDF5/netCDF4 file"),
    Case("imerg-box-outside", imerg_box_outside, ReaderError, "(centres 40.05..46.95)", "box lat 10.00..11.00"),
    # boxes (the same check serves ingestion.box, inference.box, --box)
    Case("box-inverted", box({"lat_min": 44.0, "lat_max": 43.0}), ContractError, "lat_min < lat_max",
         "'lat_min': 44.0, 'lat_max': 43.0"),
    Case("box-nan", box({"lon_min": float("nan")}), ContractError, "expected numbers of degrees", "lon_min not finite"),
    Case("box-outside-globe", box({"lon_max": 200.0}), ContractError, "lon_max <= 180", "'lon_max': 200.0"),
    Case("box-smaller-than-a-cell", box({"lat_max": 43.05}), ContractError, "at least one satellite cell",
         "holds no whole 0.1° cell"),
    # periods
    Case("periods-do-not-overlap", periods_do_not_overlap, ContractError, "share no hour",
         "satellite covers 2023-01-01 01:00"),
    Case("cli-start-after-end", cli_start_after_end, SystemExit, "expected --start <= --end",
         "is after --end 2023-07-01T00:00"),
    Case("inference-start-after-end", inference_params(start="2023-07-02T00:00", end="2023-07-01T00:00"), ValueError,
         "a first hour <= inference.end (2023-07-01T00:00)", "got '2023-07-02T00:00'"),
    # directories
    Case("dir-missing", discover_in("nope"), ReaderError, "expected a directory of input files", "does not exist"),
    Case("dir-empty", discover_in("empty", lambda d: d.mkdir()), ReaderError, "no files match '*.grib2'",
         "found 0 other entries"),
    Case("dir-is-a-file", discover_in("file", lambda d: d.write_text("x")), ReaderError,
         "expected a directory of input files", "found a file"),
    Case("inference-input-empty-dir", inference_input("empty", lambda d: d.mkdir()), InputError,
         "expected IMERG files or a satellite NetCDF in it", "holds no file"),
    Case("inference-input-missing", inference_input("nope"), InputError, "expected a directory, IMERG files",
         "does not exist"),
    # counts and fractions
    Case("members-zero", inference_chain(n_members=0), ValueError, "a number of members >= 1", "got 0"),
    Case("members-negative", inference_chain(n_members=-3), ValueError, "a number of members >= 1", "got -3"),
    Case("sampler-steps-zero", inference_chain(sampler={"num_steps": 0}), ValueError, "an integer >= 1", "got 0"),
    Case("thresholds-negative", inference_params(thresholds_mm_h=[-1.0]), ValueError, "rates >= 0 (mm/h)",
         "got [-1.0]"),
    Case("epochs-zero", training(epochs=0), ValueError, "a positive integer", "got 0"),
    Case("epochs-negative", training(epochs=-2), ValueError, "a positive integer", "got -2"),
    Case("steps-per-epoch-zero", training(steps_per_epoch=0), ValueError, "a positive integer or null", "got 0"),
    Case("split-fractions-not-one", split_fractions, ValueError, "summing to 1",
         "got {'train': 0.7, 'validation': 0.2, 'test': 0.2}"),
    # sources, outputs, models
    Case("unknown-source", unknown_source, ValueError, "one of ['synthetic', 'files', 'radar_simulated_satellite']",
         "got 'imerg'"),
    Case("unwritable-output", unwritable_output, OutputError, "expected a writable directory there", "a_file is a file"),
    Case("output-is-a-directory", output_is_a_directory, OutputError, "give a file name", "is a directory"),
    Case("missing-model-alias", missing_alias, LookupError, "Set it (the evaluation pipeline sets 'champion')",
         "has no alias 'champion' (aliases: none; versions: [])"),
    Case("no-registry-yet", no_registry_yet, LookupError, "train first: kedro run --pipelines=training",
         "has no registered model 'precipdiff-correction' (registered: none)"),
]
NEEDS_REGISTRY = {"missing-model-alias", "no-registry-yet"}


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_named_with_expected_and_found(case, tmp_path, request):
    args = (request.getfixturevalue("registries"),) if case.id in NEEDS_REGISTRY else ()
    call, named = case.setup(tmp_path, *args)
    before = _tree(tmp_path)
    with pytest.raises(case.error) as info:
        call()
    message = str(info.value)
    print(f"\n[{case.id}] {message}")
    for what, fragment in (("names", named), ("expected", case.expected), ("found", case.found)):
        assert fragment in message, f"{case.id}: message does not give {what} {fragment!r}: {message}"
    assert _tree(tmp_path) == before, "something partial was left behind"


def test_the_matrix_is_large_enough():
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)
