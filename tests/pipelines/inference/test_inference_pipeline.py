"""The README path: ``precipdiff downscale`` on IMERG files with the registry's champion models.

One real KedroSession per CLI call (``precipdiff.cli.main`` in-process, as the console script runs it).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import xarray as xr

from precipdiff.seeds import member_seeds
from precipdiff.pipelines.inference import nodes
from tests.pipelines.inference.conftest import downscale_args, downscale


def test_output_is_a_cf_ensemble_with_provenance(first_run, imerg_hours, satellite_truth, registry):
    assert not first_run.with_name(first_run.name + ".parts").exists()
    with xr.open_dataset(first_run) as ds:
        assert dict(ds.sizes) == {"time": 3, "member": 3, "lat": 40, "lon": 40, "threshold": 2, "lat_sat": 4,
                                  "lon_sat": 4, "nv": 2}
        assert list(ds["time"].values) == list(imerg_hours[:3].values)
        members = ds["precipitation"].values
        assert np.isfinite(members).all() and (members >= 0).all()
        np.testing.assert_allclose(ds["precipitation_mean"].values, members.mean(axis=1), rtol=1e-6, atol=1e-6)
        prob = ds["probability_of_exceedance"]
        assert float(prob.min()) >= 0 and float(prob.max()) <= 1
        np.testing.assert_allclose(prob.sel(threshold=1.0).values, (members >= 1.0).mean(axis=1), atol=1e-7)
        # the IMERG half hours averaged back to the project's hourly satellite field
        np.testing.assert_allclose(ds["satellite_precipitation"].values,
                                   satellite_truth["precipitation"].sel(time=imerg_hours[:3]).values, rtol=1e-5,
                                   atol=1e-6)
        assert list(ds["member_seed"].values) == member_seeds(0, 3)
        # CF and provenance
        assert ds.attrs["Conventions"].startswith("CF-1.8")
        for var in ("precipitation", "precipitation_mean", "satellite_precipitation"):
            assert ds[var].attrs["units"] == "mm h-1" and ds[var].attrs["standard_name"] == "lwe_precipitation_rate"
        assert ds["precipitation"].encoding["zlib"] and ds["precipitation"].encoding["chunksizes"][0] == 1
        versions = {mv.name: mv for mv in registry.search_model_versions("name LIKE 'precipdiff-%'")}
        for stage in ("correction", "downscaling"):
            mv = versions[f"precipdiff-{stage}"]
            assert ds.attrs[f"{stage}_model_name"] == mv.name
            assert ds.attrs[f"{stage}_model_version"] == "1" and ds.attrs[f"{stage}_model_run_id"] == mv.run_id
            # the sampler chosen on validation at training, registered with the model, is the one used
            assert json.loads(ds.attrs[f"{stage}_sampler"]) == json.loads(mv.tags["sampler"])
        assert ds.attrs["sampler_num_steps"] == json.loads(versions["precipdiff-downscaling"].tags["sampler"])["num_steps"]
        assert ds.attrs["clipped_cells_total"] == int(ds["clipped_cells"].sum())
        assert ds.attrs["precipdiff_version"] and ds.attrs["input_kind"] == "IMERG"
        # what the models learnt from, and that they were run on real input only because we allowed it (#23)
        assert ds.attrs["correction_training_source"] == "synthetic"
        assert ds.attrs["downscaling_training_period"].startswith("2022-10-01T01:00Z/")
        assert "allowed by --allow-synthetic-models" in ds.attrs["precipdiff_notes"]
        assert ds.attrs["outside_training_domain"] == "no"


def test_synthetic_trained_models_on_real_files_are_refused_without_the_flag(trained_project, imerg_dir,
                                                                           imerg_hours, tmp_path, capsys):
    from precipdiff.cli import main

    out = tmp_path / "refused.nc"
    args = [a for a in downscale_args(trained_project, imerg_dir, out, "--start", imerg_hours[0], "--end",
                                      imerg_hours[0]) if a != "--allow-synthetic-models"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("precipdiff downscale: error: inference: precipdiff-correction v1 was trained on synthetic")
    assert "--allow-synthetic-models" in err and not out.exists()


def test_rerun_computes_only_new_hours(first_run, trained_project, imerg_dir, imerg_hours, tmp_path, monkeypatch):
    out = tmp_path / "ensemble.nc"
    shutil.copy(first_run, out)
    computed = []
    real = nodes.run_chain

    def counting(sat_t, *args, **kwargs):
        computed.append(len(sat_t))
        return real(sat_t, *args, **kwargs)

    monkeypatch.setattr(nodes, "run_chain", counting)
    assert downscale(trained_project, imerg_dir, out, "--start", imerg_hours[0], "--end", imerg_hours[3],
                     "--members", 3) == 0
    assert computed == [1]  # the three hours already written are skipped
    with xr.open_dataset(out) as new, xr.open_dataset(first_run) as old:
        assert new.sizes["time"] == 4
        xr.testing.assert_identical(new["precipitation"].isel(time=slice(0, 3)), old["precipitation"])


def test_one_member_regenerated_from_its_seed(first_run, trained_project, imerg_dir, imerg_hours, tmp_path):
    with xr.open_dataset(first_run) as ds:
        seed = int(ds["member_seed"].values[1])
        expected = ds["precipitation"].sel(time=imerg_hours[1]).isel(member=1).values
    out = tmp_path / "member.nc"
    assert downscale(trained_project, imerg_dir, out, "--start", imerg_hours[1], "--end", imerg_hours[1],
                     "--member-seed", seed) == 0
    with xr.open_dataset(out) as ds:
        assert list(ds["member_seed"].values) == [seed]
        np.testing.assert_array_equal(ds["precipitation"].isel(time=0, member=0).values, expected)


def test_missing_alias_is_named_and_nothing_is_written(trained_project, imerg_dir, tmp_path, capsys):
    out = tmp_path / "new_folder" / "ensemble.nc"  # a missing folder is not left behind either (#16)
    assert downscale(trained_project, imerg_dir, out, "--alias", "nope") == 1
    err = capsys.readouterr().err
    assert "'precipdiff-correction' has no alias 'nope'" in err and "champion" in err
    assert not out.parent.exists()


def test_unwritable_output_fails_before_kedro_starts(trained_project, imerg_dir, tmp_path, capsys):
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("")
    assert downscale(trained_project, imerg_dir, blocker / "out.nc") == 1
    err = capsys.readouterr().err
    assert f"output {blocker / 'out.nc'}: {blocker} is a file; expected a writable directory there" in err
