"""The code's training defaults (``DEFAULT_CONFIG``) are the CPU profile of ``conf/base``: a knob changed
in one place and not the other fails here."""

import pytest
import yaml

from precipdiff.training import DEFAULT_CONFIG, resolve_config
from tests.conftest import PROJECT_ROOT

PER_STAGE = {"batch_size"}      # set per stage in the YAML (correction 32, downscaling 16 = the default)
FROM_PATCHES = {"patch_size"}   # the pipeline takes it from preprocessing.patches, never from this block


def _block(stage: str, block: str) -> dict:
    path = PROJECT_ROOT / "conf" / "base" / "parameters_training.yml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))[f"{stage}_training"][block]
    return {k: v for k, v in params.items() if k != "enabled"}


@pytest.mark.parametrize("block", ["diffusion", "regression"])
@pytest.mark.parametrize("stage", ["correction", "downscaling"])
def test_defaults_equal_the_yaml(stage, block):
    yaml_cfg = _block(stage, block)
    assert set(yaml_cfg) == set(DEFAULT_CONFIG) - FROM_PATCHES, (
        f"parameters_training.yml {stage}_training.{block}: keys differ from DEFAULT_CONFIG: "
        f"only in the YAML {sorted(set(yaml_cfg) - set(DEFAULT_CONFIG))}, "
        f"only in the code {sorted(set(DEFAULT_CONFIG) - set(yaml_cfg) - FROM_PATCHES)}")
    differ = {k: {"yaml": yaml_cfg[k], "code": DEFAULT_CONFIG[k]} for k in yaml_cfg
              if k not in PER_STAGE and yaml_cfg[k] != DEFAULT_CONFIG[k]}
    assert not differ, f"parameters_training.yml {stage}_training.{block} disagrees with DEFAULT_CONFIG: {differ}"


def test_the_default_batch_size_is_a_stage_s():
    assert DEFAULT_CONFIG["batch_size"] in {_block(s, "diffusion")["batch_size"] for s in ("correction", "downscaling")}


def test_the_yaml_block_resolves_to_itself():
    """Every knob of the YAML is one ``train`` knows, and nothing is filled in behind its back."""
    yaml_cfg = _block("correction", "diffusion")
    resolved = resolve_config(yaml_cfg)
    assert {k: resolved[k] for k in yaml_cfg} == yaml_cfg
