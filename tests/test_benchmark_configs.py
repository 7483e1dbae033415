"""Run configurations in ``benchmarks/configs`` (``kedro run --config <file>``) stay valid: their keys are
``kedro run`` options and their parameters merge over their environment as the README says."""

import yaml
from kedro.framework.cli.project import run

from precipdiff.data.transforms import STATIC_CHANNELS
from tests.conftest import PROJECT_ROOT
from tests.test_shared_sampler import parameters

CONFIG = PROJECT_ROOT / "benchmarks" / "configs" / "held_out_with_location.yml"


def test_the_location_arms_keep_their_held_out_regions_and_train_apart():
    config = yaml.safe_load(CONFIG.read_text())["run"]
    assert set(config) <= {p.name for p in run.params}
    default = parameters(config["env"])["experiments"]["held_out"]["arms"]
    arms = parameters(config["env"], config["params"])["experiments"]["held_out"]["arms"]
    assert set(arms) == set(default) and len(arms) == 2
    for name, arm in arms.items():
        for stage in ("correction", "downscaling"):
            training, before = arm[f"{stage}_training"], default[name][f"{stage}_training"]
            assert training["static_channels"] == list(STATIC_CHANNELS)  # lat, lon
            assert training["exclude_regions"] == before["exclude_regions"] == [arm["region"]]  # deep merge
            assert training["checkpoint_dir"] != before["checkpoint_dir"]  # never resumes the default arm
