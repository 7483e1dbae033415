"""``precipdiff downscale`` (``precipdiff.cli``): a failed run leaves no output directory it created (#16)."""

from __future__ import annotations

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
