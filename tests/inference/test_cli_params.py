"""``precipdiff downscale`` options → runtime parameters of the inference pipeline."""

from __future__ import annotations

import pytest

from precipdiff.cli import find_project, parser, runtime_params


def params(tmp_path, *extra):
    args = parser().parse_args(["downscale", "--input", str(tmp_path), "--output", "out.nc", *extra])
    return runtime_params(args, tmp_path / "out.nc")["inference"]


def test_only_given_options_override_the_configuration(tmp_path):
    p = params(tmp_path, "--box", "46.5,48.5,-123.5,-121.5", "--steps", "8", "--members", "4")
    assert p["box"] == {"lat_min": 46.5, "lat_max": 48.5, "lon_min": -123.5, "lon_max": -121.5}
    assert p["chain"] == {"sampler": {"num_steps": 8}, "n_members": 4} and p["input"] == [str(tmp_path)]
    assert p["start"] is None and p["end"] is None  # absent = the whole input, not the configured demo hours
    assert "models" not in p


@pytest.mark.parametrize(
    ("option", "models"),
    [(["--alias", "challenger"], {"correction": {"alias": "challenger"}, "downscaling": {"alias": "challenger"}}),
     (["--version", "3"], {"correction": {"version": "3"}, "downscaling": {"version": "3"}}),
     (["--version", "correction=3,downscaling=2"], {"correction": {"version": "3"}, "downscaling": {"version": "2"}}),
     (["--run-id", "abc", "--downscaling-model", "precipdiff-downscaling-regression"],
      {"correction": {"run_id": "abc"}, "downscaling": {"run_id": "abc", "name": "precipdiff-downscaling-regression"}})],
)
def test_model_choice(tmp_path, option, models):
    assert params(tmp_path, *option)["models"] == models


def test_member_seeds_and_thresholds(tmp_path):
    p = params(tmp_path, "--member-seed", "12", "--member-seed", "34", "--thresholds", "0.5,2")
    assert p["chain"]["member_seeds"] == [12, 34] and p["thresholds_mm_h"] == [0.5, 2.0]


@pytest.mark.parametrize("bad", [["--box", "1,2,3"], ["--alias", "a", "--version", "1"], ["--version", "x=1"],
                                 ["--solver", "rk4"]])
def test_bad_options_are_refused(tmp_path, bad):
    with pytest.raises(SystemExit):
        params(tmp_path, *bad)


def test_missing_input_and_project(tmp_path):
    args = parser().parse_args(["downscale", "--input", str(tmp_path / "nope"), "--output", "o.nc"])
    with pytest.raises(FileNotFoundError, match="--input"):
        runtime_params(args, tmp_path / "o.nc")
    with pytest.raises(FileNotFoundError, match="not inside a precipdiff Kedro project"):
        find_project(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.kedro]\npackage_name = 'precipdiff'\n")
    assert find_project(tmp_path) == tmp_path
