"""``precipdiff`` command line: a thin front end that runs the ``inference`` Kedro pipeline.

    precipdiff downscale --input DIR_OR_FILES --box 46.5,48.5,-123.5,-121.5 \
        --start 2022-10-30T01:00 --end 2022-10-30T06:00 --members 8 --output out.nc \
        [--alias champion | --version V | --run-id ID] [--steps 12 --solver heun --churn 0]

Every option becomes a runtime parameter of ``kedro run --pipelines=inference`` (``inference.*``,
the sampling ones ``inference.chain.*``; see ``conf/base/parameters_inference.yml`` and
``catalog_inference.yml``); the project (``conf/``, ``mlflow.db``) is the nearest parent of the
working directory with a Kedro ``pyproject.toml``, or ``--project``. Full documentation: ``docs/inference.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import click
import pandas as pd

from precipdiff.data.contract import ContractError, snap_box
from precipdiff.inference.inputs import check_complete_hours, find_inputs
from precipdiff.inference.output import OutputError, check_writable
from precipdiff.inference.settings import ChainSettingError, ChainSettings

PIPELINE = "inference"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``precipdiff`` console script; returns the exit status."""
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return 2
    return args.run(args)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="precipdiff", description="PrecipDiff: satellite precipitation → 1 km ensembles")
    sub = top.add_subparsers(dest="command")
    p = sub.add_parser("downscale", help="IMERG (or a satellite NetCDF) → 1 km ensemble NetCDF",
                       description="Correct and downscale satellite precipitation with the registered models; "
                                   "writes members, mean, exceedance probabilities and provenance (CF NetCDF). "
                                   "Hours are labelled by their END (UTC): the hour 2023-07-01T01:00 covers "
                                   "00:00-01:00 and is the mean of the IMERG half hours starting 00:00 and 00:30, "
                                   "so it needs both files.")
    p.set_defaults(run=downscale)
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help="IMERG files, directories of them, or a canonical satellite NetCDF")
    p.add_argument("--box", type=_box, metavar="LAT_MIN,LAT_MAX,LON_MIN,LON_MAX",
                   help="degrees (lon east); required for IMERG input")
    p.add_argument("--start", help="first hour, labelled by its end, UTC (2023-07-01T01:00 = 00:00-01:00, the half "
                                   "hours starting 00:00 and 00:30); default: the first complete input hour")
    p.add_argument("--end", help="last hour, inclusive, labelled by its end; default: the last complete input hour")
    p.add_argument("--members", type=int, help="ensemble members (default: parameters_inference.yml)")
    p.add_argument("--output", required=True, help="output NetCDF (hours stream to OUTPUT.parts/ first)")
    p.add_argument("--overwrite", action="store_true", help="replace an output written with other settings")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--alias", help="registry alias of both models (default: champion)")
    which.add_argument("--version", type=_versions, metavar="V",
                       help="registry version of both models, or correction=V1,downscaling=V2")
    which.add_argument("--run-id", help="the MLflow run that trained (and registered) both models")
    p.add_argument("--allow-synthetic-models", action="store_true", default=None,
                   help="run models trained without a real satellite (synthetic data, or a satellite simulated "
                        "from radar) on real input; refused otherwise")
    p.add_argument("--correction-model", help="registered name (default precipdiff-correction)")
    p.add_argument("--downscaling-model", help="registered name (default precipdiff-downscaling)")
    p.add_argument("--steps", type=int, help="sampler steps (noise levels)")
    p.add_argument("--solver", choices=("heun", "euler"))
    p.add_argument("--churn", type=float, help="S_churn (0 = deterministic sampler)")
    p.add_argument("--thresholds", type=_floats, metavar="T1,T2,…", help="exceedance thresholds in mm/h")
    p.add_argument("--seed", type=int, help="ensemble seed (member seeds derive from it)")
    p.add_argument("--member-seed", type=int, action="append", dest="member_seeds", metavar="SEED",
                   help="regenerate the member with this member_seed (repeatable); overrides --members/--seed")
    p.add_argument("--tile", type=int, help="tile side in cells")
    p.add_argument("--overlap", type=int, help="tile overlap in cells")
    p.add_argument("--batch-size", type=int, help="tiles × members denoised together")
    p.add_argument("--hours-per-chunk", type=int, help="hours sampled together before writing")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:1 | mps")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"))
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the U-Nets")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--env", default=None, help="Kedro configuration environment (e.g. gpu)")
    p.add_argument("--project", type=Path, help="Kedro project directory (default: found from the working directory)")
    p.add_argument("--debug", action="store_true", help="show the full traceback on error")
    return top


def downscale(args: argparse.Namespace) -> int:
    """Check the request and the output, then ``kedro run --pipelines=inference`` with the options as
    runtime parameters. A request that cannot work is refused before a Kedro session or an MLflow run
    exists (no torch either): it answers at once and leaves nothing behind."""
    try:
        project = find_project(args.project)
        check_request(args)
        output = check_writable(args.output)  # fail before Kedro starts (creates missing directories)
        params = runtime_params(args, output)
    except (OutputError, FileNotFoundError, ValueError) as exc:
        return _fail(exc, args.debug)
    created = first_missing(output.parent)  # made by the run only when it writes an hour
    try:
        run_pipeline(project, params, args.env)
    except BaseException as exc:
        remove_if_unused(created)
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: not a one-line error
            raise
        return _fail(exc, args.debug)  # reported as one clear line; --debug for the traceback
    print(f"precipdiff downscale: wrote {output}")
    for line in output_notes(output):
        print(f"precipdiff downscale: note: {line}")
    return 0


def output_notes(output: Path) -> list[str]:
    """The lines of the output's ``precipdiff_notes`` attribute (training data, domain), if any."""
    import xarray as xr

    from precipdiff.pipelines.inference.nodes import NOTES_ATTR

    with xr.open_dataset(output) as ds:
        text = str(ds.attrs.get(NOTES_ATTR, "none"))
    return [] if text == "none" else text.splitlines()


def first_missing(folder: Path) -> Path | None:
    """The outermost missing folder on the way to ``folder`` (``None`` if it exists)."""
    missing = None
    while not folder.exists() and folder != folder.parent:
        missing, folder = folder, folder.parent
    return missing


def remove_if_unused(created: Path | None) -> None:
    """Remove ``created`` (a folder this run made) unless it holds a written hour (``*.nc``, kept to resume)."""
    if created is None or not created.is_dir():
        return
    written = [p for p in created.rglob("*.nc") if p.is_file()]
    if written:
        print(f"precipdiff downscale: kept {created}: {len(written)} hour file(s) written; run again to resume",
              file=sys.stderr)
        return
    shutil.rmtree(created, ignore_errors=True)


OPTIONS = {"n_members": "--members", "member_seeds": "--member-seed", "tile": "--tile", "overlap": "--overlap",
           "batch_size": "--batch-size", "precision": "--precision", "sampler.num_steps": "--steps",
           "sampler.solver": "--solver", "sampler.S_churn": "--churn"}  # ChainSettings key -> option


def check_request(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` naming the option that cannot work: the period, the box, the chain options
    (members, seeds, sampler, tiles), the thresholds, and whether the input holds a complete hour
    (from the IMERG file names or the NetCDF time axis; no field is read)."""
    check_period(args.start, args.end)
    if args.box is not None:
        try:
            snap_box(args.box, name="--box")
        except ContractError as exc:
            raise ValueError(str(exc)) from None
    try:
        ChainSettings.from_params(chain_options(args), "inference.chain")
    except ChainSettingError as exc:
        raise ValueError(f"{OPTIONS.get(exc.key, exc.key)} {exc.value!r}: expected {exc.expected}") from None
    if args.thresholds is not None and (not args.thresholds or min(args.thresholds) < 0):
        raise ValueError(f"--thresholds {args.thresholds}: expected rates >= 0 (mm/h)")
    inputs = [Path(p).expanduser().absolute() for p in args.input]
    for path in inputs:
        if not path.exists():
            raise FileNotFoundError(f"--input {path}: no such file or directory")
    check_complete_hours(find_inputs(inputs), args.start, args.end)


def chain_options(args: argparse.Namespace) -> dict:
    """``inference.chain`` runtime parameters from the options given (absent: the configured ones)."""
    sampler = {"num_steps": args.steps, "solver": args.solver, "S_churn": args.churn}
    chain = {"n_members": args.members, "seed": args.seed, "member_seeds": args.member_seeds,
             "sampler": _given(sampler), "tile": args.tile, "overlap": args.overlap, "batch_size": args.batch_size,
             "device": args.device, "precision": args.precision, "compile": args.compile}
    return _given(chain)


def check_period(start: str | None, end: str | None) -> None:
    """Raise ``ValueError`` naming ``--start``/``--end`` if one is not a time or ``--start`` is after ``--end``."""
    times = {}
    for option, text in (("--start", start), ("--end", end)):
        if text is not None:
            try:
                times[option] = pd.Timestamp(text)
            except ValueError:
                raise ValueError(f"{option} {text!r}: expected a time such as 2023-07-01T06:00 (end of the hour, "
                                 "UTC)") from None
    if len(times) == 2 and times["--start"] > times["--end"]:
        raise ValueError(f"--start {start} is after --end {end}; expected --start <= --end (both end-of-hour "
                         "labels, UTC, inclusive)")


def run_pipeline(project: Path, params: dict, env: str | None = None):
    """Run the ``inference`` pipeline in ``project`` (a real ``KedroSession``, cwd = project for MLflow)."""
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from precipdiff.hooks import close_session_run

    cwd, interrupted = os.getcwd(), False
    os.chdir(project)
    try:
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
            return session.run(pipeline_names=[PIPELINE])
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        # kedro-mlflow leaves its (nested) run open in a long-lived process (main() called from
        # Python): close it here, while the relative tracking URI still points at this project
        close_session_run(interrupted)
        os.chdir(cwd)


def runtime_params(args: argparse.Namespace, output: Path) -> dict:
    """``{"inference": {...}}`` from the options given (absent options keep the configured defaults)."""
    inputs = [str(Path(p).expanduser().absolute()) for p in args.input]
    for path in inputs:
        if not Path(path).exists():
            raise FileNotFoundError(f"--input {path}: no such file or directory")
    params = {
        "input": inputs, "output": str(output), "overwrite": bool(args.overwrite),
        "box": args.box, "start": args.start, "end": args.end,  # absent = the whole input
        "thresholds_mm_h": args.thresholds, "hours_per_chunk": args.hours_per_chunk, "threads": args.threads,
        "progress": False if args.no_progress else None, "chain": chain_options(args), "models": _models(args),
        "allow_synthetic_models": args.allow_synthetic_models,
    }
    keep_none = {"box", "start", "end"}
    return {"inference": {k: v for k, v in params.items() if k in keep_none or v not in (None, {})}}


def _models(args: argparse.Namespace) -> dict:
    out = {}
    for stage in ("correction", "downscaling"):
        choice = {"name": getattr(args, f"{stage}_model")}
        if args.version:
            choice["version"] = args.version.get(stage, args.version.get("*"))
        elif args.run_id:
            choice["run_id"] = args.run_id
        elif args.alias:
            choice["alias"] = args.alias
        out[stage] = _given(choice)
    return _given(out)


def _given(d: dict) -> dict:
    return {k: v for k, v in d.items() if v not in (None, {})}


def find_project(start: Path | None = None) -> Path:
    """``start`` (if given) or the nearest parent of the working directory with a Kedro ``pyproject.toml``."""
    candidates = [Path(start).absolute()] if start else [Path.cwd(), *Path.cwd().parents]
    for folder in candidates:
        toml = folder / "pyproject.toml"
        if toml.is_file() and "[tool.kedro]" in toml.read_text():
            return folder
    where = start or Path.cwd()
    raise FileNotFoundError(f"{where}: not inside a precipdiff Kedro project (no pyproject.toml with [tool.kedro]); "
                            "run from the project or pass --project")


def _box(text: str) -> dict:
    try:
        lat_min, lat_max, lon_min, lon_max = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--box {text!r}: expected lat_min,lat_max,lon_min,lon_max in degrees") from None
    return {"lat_min": lat_min, "lat_max": lat_max, "lon_min": lon_min, "lon_max": lon_max}


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers") from None


def _versions(text: str) -> dict:
    """``"3"`` → both models; ``"correction=3,downscaling=2"`` → per model."""
    if "=" not in text:
        return {"*": text}
    pairs = dict(item.split("=", 1) for item in text.split(","))
    unknown = set(pairs) - {"correction", "downscaling"}
    if unknown:
        raise argparse.ArgumentTypeError(f"--version: unknown model(s) {sorted(unknown)}; use correction=V,downscaling=V")
    return pairs


def _fail(exc: BaseException, debug: bool) -> int:
    if debug:
        raise exc
    print(f"precipdiff downscale: error: {_root_message(exc)}", file=sys.stderr)
    return 1


def _root_message(exc: BaseException) -> str:
    """The message of the first error that is not Kedro's wrapper ('Failed while loading …')."""
    from kedro.io import DatasetError

    while isinstance(exc, DatasetError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc)



# Kedro imports `<package>.cli.cli` as the project's extra `kedro` commands when this module
# exists; precipdiff adds none there (its own console command is `precipdiff`, see `main`).
@click.group(name="precipdiff")
def cli() -> None:
    """precipdiff project commands (none beyond Kedro's; use the `precipdiff` command)."""


if __name__ == "__main__":
    sys.exit(main())
