"""The sampler vocabulary of the project, torch-free (the command line checks a request with it
before importing torch): the keyword arguments of :func:`precipdiff.nn.sampler.edm_sampler` a
setting may give — a model card's ``sampler``, the chain's overrides, the sampler selection's grid,
the MLflow pyfunc params — and the precisions a sampler may run in.
"""

from __future__ import annotations

from collections.abc import Mapping

SAMPLER_KEYS = ("num_steps", "solver", "S_churn", "sigma_min", "sigma_max", "rho", "S_min", "S_max", "S_noise")
SOLVERS = ("heun", "euler")


class SamplerSettingError(ValueError):
    """A sampler setting that cannot work: ``key`` (e.g. ``sampler.num_steps``), what was expected, what was found."""

    def __init__(self, key: str, value, expected: str):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"{key}: expected {expected}; got {value!r}")


def check_sampler(setting: Mapping) -> dict:
    """``setting`` as a plain dict if every key is in :data:`SAMPLER_KEYS` with a usable value, else
    :class:`SamplerSettingError` naming ``sampler.<key>``."""
    unknown = sorted(set(setting) - set(SAMPLER_KEYS))
    if unknown:
        raise SamplerSettingError("sampler", dict(setting), f"keys among {list(SAMPLER_KEYS)} (unknown: {unknown})")
    if "num_steps" in setting and int(setting["num_steps"]) < 1:
        raise SamplerSettingError("sampler.num_steps", setting["num_steps"], "an integer >= 1")
    if "solver" in setting and setting["solver"] not in SOLVERS:
        raise SamplerSettingError("sampler.solver", setting["solver"], " or ".join(repr(s) for s in SOLVERS))
    if "S_churn" in setting and float(setting["S_churn"]) < 0:
        raise SamplerSettingError("sampler.S_churn", setting["S_churn"], "a number >= 0")
    return dict(setting)


def network_calls(setting: Mapping) -> int:
    """Network evaluations per sample of a setting (Alg. 2: Heun skips the correction of the last step)."""
    steps = int(setting.get("num_steps", 18))
    return 2 * steps - 1 if setting.get("solver", "heun") == "heun" else steps
PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 autocast on CUDA and bf16-native CPUs, else fp32 (nn.sampling)
