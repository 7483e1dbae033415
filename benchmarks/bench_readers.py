"""Decode time and peak memory of the real-data readers on the shared files.

Run from the project root::

    .venv/bin/python benchmarks/bench_readers.py            # ~30 s
    .venv/bin/python benchmarks/bench_readers.py --cfgrib   # + one cfgrib decode for comparison (~15 s)

Each measurement runs in a fresh Python process, so its peak RSS (``resource.getrusage``) is its own.
MRMS figures are per file (3500 x 7000 CONUS GaugeCorr_QPE_01H GRIB2, PNG-packed); "box" is the
2.6° x 5.2° Iowa box of the shared-data README (260 x 520 radar cells).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
MRMS_DIR = SHARED / "mrms" / "gaugecorr_qpe_01h"
IMERG_FILE = SHARED / "imerg" / "3B-HHR-E.MS.MRG.3IMERG.20151001-S000000-E002959.0000.V03E.RT-H5"
BOXES = {
    "iowa": {"lat_min": 42.2, "lat_max": 44.8, "lon_min": -94.2, "lon_max": -89.0},
    "conus": {"lat_min": 20.0, "lat_max": 55.0, "lon_min": -130.0, "lon_max": -60.0},
    "global": {"lat_min": -90.0, "lat_max": 90.0, "lon_min": -180.0, "lon_max": 180.0},
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _timed(fn, items) -> list[float]:
    seconds = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        seconds.append(time.perf_counter() - start)
    return seconds


def worker(task: str, n_files: int) -> dict:
    """One measurement (run in its own process)."""
    from precipdiff.data.files import ingest_day
    from precipdiff.data.imerg import read_imerg
    from precipdiff.data.mrms import read_mrms

    mrms = sorted(MRMS_DIR.glob("*.grib2"))
    if task in ("mrms-conus", "mrms-box"):
        box = BOXES["conus" if task == "mrms-conus" else "iowa"]
        read_mrms(mrms[-1], box)  # warm-up: library and eccodes definitions loading
        seconds = _timed(lambda p: read_mrms(p, box), mrms[:n_files])
    elif task == "eccodes-elements":  # can eccodes decode only the box? (no: same time, same memory)
        seconds = _timed(_decode_elements, mrms[:n_files])
    elif task == "cfgrib":
        import xarray as xr

        seconds = _timed(lambda p: xr.open_dataset(p, engine="cfgrib", backend_kwargs={"indexpath": ""}).load(),
                         mrms[:1])
    elif task in ("imerg-box", "imerg-global"):
        box = BOXES["iowa" if task == "imerg-box" else "global"]
        read_imerg(IMERG_FILE, box)
        seconds = _timed(lambda p: read_imerg(p, box), [IMERG_FILE] * 5)
    elif task.startswith("day-"):  # one day of 24 hourly files, radar only, Iowa box
        day = [p for p in mrms if "20160922" in p.name]
        seconds = _timed(lambda s: ingest_day([], day, BOXES["iowa"], scheduler=s), [task[4:]])
        seconds = [s / len(day) for s in seconds]  # per file
    else:
        raise ValueError(task)
    return {"task": task, "median_s": statistics.median(seconds), "min_s": min(seconds), "n": len(seconds),
            "peak_rss_mb": round(_peak_rss_mb())}


def _decode_elements(path: Path) -> None:
    import eccodes
    import numpy as np

    with open(path, "rb") as handle_file:
        handle = eccodes.codes_grib_new_from_file(handle_file)
    rows, cols = np.arange(1020, 1280), np.arange(3580, 4100)  # the Iowa box in the file's (j, i) order
    index = (rows[:, None] * 7000 + cols[None, :]).ravel().tolist()
    eccodes.codes_get_double_elements(handle, "values", index)
    eccodes.codes_release(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=8, help="MRMS files per measurement")
    parser.add_argument("--cfgrib", action="store_true", help="also time one cfgrib/xarray decode")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.files)))
        return
    if not MRMS_DIR.is_dir():
        sys.exit(f"shared data not found: {MRMS_DIR}")
    tasks = ["mrms-conus", "mrms-box", "eccodes-elements", "imerg-box", "imerg-global",
             "day-synchronous", "day-threads"] + (["cfgrib"] if args.cfgrib else [])
    print(f"{'measurement':<18} {'median s':>9} {'min s':>7} {'n':>3} {'peak RSS MB':>12}")
    for task in tasks:
        out = subprocess.run([sys.executable, __file__, "--worker", task, "--files", str(args.files)],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{row['task']:<18} {row['median_s']:>9.3f} {row['min_s']:>7.3f} {row['n']:>3} {row['peak_rss_mb']:>12}")
    print("mrms-*: per file; eccodes-elements: decode via codes_get_double_elements (box only requested); "
          "day-*: ingest_day of 24 files / 24, Iowa box, radar only")


if __name__ == "__main__":
    main()
