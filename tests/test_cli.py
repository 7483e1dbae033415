"""``precipdiff downscale`` (``precipdiff.cli``): a failed run leaves no output directory it created (#16); a
request that cannot work is refused before Kedro, MLflow or torch start (#24)."""

from __future__ import annotations

import pandas as pd
import pytest

from precipdiff import cli


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "pyproject.toml").write_text("[tool.kedro]\npackage_name = 'precipdiff'\n")
    return folder


def downscale(project, inputs, output) -> int:
    return cli.main(["downscale", "--input", str(inputs), "--output", str(output), "--project", str(project)])


def test_missing_input_creates_no_output_directory(tmp_path, project, capsys):
    out = tmp_path / "new" / "deeper" / "ensemble.nc"
    assert downscale(project, tmp_path / "nope", out) == 1
    assert "--input" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_failed_run_removes_the_directory_it_created(tmp_path, project, monkeypatch, capsys):
    out = tmp_path / "new" / "ensemble.nc"

    def fails_after_preparing(*args, **kwargs):  # the store made its folders, then the models failed
        out.with_name("ensemble.nc.parts").mkdir(parents=True)
        (out.with_name("ensemble.nc.parts") / "manifest.json").write_text("{}")
        raise RuntimeError("model 'precipdiff-correction' has no alias 'nope'")

    monkeypatch.setattr(cli, "run_pipeline", fails_after_preparing)
    assert downscale(project, tmp_path, out) == 1
    assert "has no alias 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_failed_run_keeps_written_hours_to_resume(tmp_path, project, monkeypatch, capsys):
    out = tmp_path / "new" / "ensemble.nc"
    part = out.with_name("ensemble.nc.parts") / "20230701T0100.nc"

    def fails_after_one_hour(*args, **kwargs):
        part.parent.mkdir(parents=True)
        part.write_bytes(b"one hour")
        raise RuntimeError("out of memory")

    monkeypatch.setattr(cli, "run_pipeline", fails_after_one_hour)
    assert downscale(project, tmp_path, out) == 1
    assert part.exists()
    assert f"kept {tmp_path / 'new'}: 1 hour file(s) written; run again to resume" in capsys.readouterr().err


def test_existing_directory_is_never_removed(tmp_path, project, monkeypatch):
    monkeypatch.setattr(cli, "run_pipeline", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    assert downscale(project, tmp_path, tmp_path / "ensemble.nc") == 1
    assert tmp_path.is_dir() and project.is_dir()


def test_help_says_how_hours_are_labelled(capsys):
    """Issue #23: `downscale --help` says an hour is labelled by its end and which half hours make it."""
    with pytest.raises(SystemExit):
        cli.main(["downscale", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "labelled by their END (UTC)" in text and "half hours starting 00:00 and 00:30" in text


def test_the_notes_of_the_run_are_lines_of_the_cli_output(tmp_path, project, monkeypatch, capsys):
    """Issue #23: leaving the training domain (or running synthetic-trained models on real input, when
    allowed) is a line of precipdiff's own output, from the written file's attribute."""
    import xarray as xr

    out = tmp_path / "ensemble.nc"
    notes = "the box … leaves the training domain of precipdiff-correction v1 …\nsecond line"

    def writes(project_dir, params, env=None):
        assert params["inference"]["allow_synthetic_models"] is True
        xr.Dataset(attrs={"precipdiff_notes": notes}).to_netcdf(out)

    monkeypatch.setattr(cli, "run_pipeline", writes)
    code = cli.main(["downscale", "--input", str(tmp_path), "--output", str(out), "--project", str(project),
                     "--allow-synthetic-models"])
    printed = capsys.readouterr().out.splitlines()
    assert code == 0 and printed[1:] == [f"precipdiff downscale: note: {line}" for line in notes.splitlines()]


# ---- a request that cannot work is refused before Kedro, MLflow or torch (issue #24, item 5) ----
REFUSALS = {
    "bad box": (["--box", "48.5,46.5,-123.5,-121.5"], "--box: need -90 <= lat_min < lat_max <= 90"),
    "no member": (["--members", "0"], "--members 0: expected a number of members >= 1"),
    "no complete hour": (["--start", "2023-07-01T02:00", "--end", "2023-07-01T03:00"],
                         "inference: no complete hour in 2023-07-01 02:00:00 … 2023-07-01 03:00:00 (2 file(s), data "
                         "ending 2023-07-01 00:30:00 … 2023-07-01 01:00:00). An hour is labelled by its end (UTC)"),
}
CHILD = """
import sys, time
from precipdiff.cli import main
t0 = time.perf_counter()
status = main(sys.argv[1:])
print(f"STATUS {status} SECONDS {time.perf_counter() - t0:.3f} TORCH {'torch' in sys.modules} "
      f"KEDRO {'kedro.framework.session' in sys.modules} MLFLOW {'mlflow' in sys.modules}")
"""


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_downscale_answers_at_once_before_kedro_mlflow_or_torch(tmp_path, project, case):
    """The input (two IMERG half hours, names only) holds one complete hour, ending 01:00 (the half hours
    ending 00:30 and 01:00); each case asks for something that cannot work."""
    import subprocess
    import sys

    from tests.inference.imerg_files import imerg_name

    inputs = tmp_path / "imerg"
    inputs.mkdir()
    for start in ("2023-07-01T00:00", "2023-07-01T00:30"):
        (inputs / imerg_name(pd.Timestamp(start))).write_bytes(b"not read")
    options, message = REFUSALS[case]
    argv = ["downscale", "--input", str(inputs), "--output", str(tmp_path / "out" / "ensemble.nc"),
            "--project", str(project), "--box", "46.5,48.5,-123.5,-121.5", *options]
    done = subprocess.run([sys.executable, "-c", CHILD, *argv], cwd=project, capture_output=True, text=True,
                          timeout=120)
    report = dict(zip(*[iter(done.stdout.split()[-10:])] * 2))
    assert report["STATUS"] == "1", done.stdout + done.stderr
    assert f"precipdiff downscale: error: {message}" in done.stderr
    assert float(report["SECONDS"]) < 0.5, report  # the checks themselves (imports excluded)
    assert report["TORCH"] == report["KEDRO"] == report["MLFLOW"] == "False", report  # no session, no run
    assert sorted(p.name for p in project.iterdir()) == ["pyproject.toml"]  # no mlflow.db, no mlruns
    assert not (tmp_path / "out").exists()
