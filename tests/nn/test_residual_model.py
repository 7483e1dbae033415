"""ResidualModel: normalisation, config round trip, ensemble shapes and units (sampled through the
one sampling path, :mod:`precipdiff.nn.sampling`)."""

import json

import pytest
import torch

from precipdiff.nn.residual import build_model, model_config, with_mean
from precipdiff.nn.sampling import COARSE, predict, sample_members


def sample(model, cond, members, seed=0, precision="auto", **sampler):
    """``members`` residual members of each sample of ``cond`` (hour keys 0, 1, …)."""
    return sample_members(model, cond, sampler, list(range(seed, seed + members)), list(range(len(cond))), COARSE,
                          precision=precision)

UNET = {"base_channels": 8, "channel_mult": (1, 2), "attn_levels": (1,)}


def _model(objective: str, scale: float = 2.0):
    torch.manual_seed(0)
    model = build_model(model_config(objective, 2, UNET, cond_mean=[1.0, -1.0], cond_std=[2.0, 4.0],
                                     residual_scale=scale, sigma_data=1.0))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model.eval()


def test_normalise_cond_per_channel_and_nan_to_zero():
    cond = torch.tensor([3.0, 7.0]).reshape(1, 2, 1, 1).repeat(1, 1, 2, 2)
    cond[0, 0, 0, 0] = float("nan")
    n = _model("edm").normalise_cond(cond)
    assert n[0, 0, 0, 0] == 0 and n[0, 0, 1, 1] == pytest.approx(1.0) and n[0, 1, 1, 1] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="channels"):
        _model("edm").normalise_cond(torch.zeros(1, 3, 2, 2))


@pytest.mark.parametrize("objective", ["edm", "regression"])
def test_config_is_json_and_rebuild_reproduces_outputs(objective):
    model = _model(objective)
    cfg = json.loads(json.dumps(model_config(objective, 2, UNET, cond_mean=[1.0, -1.0], cond_std=[2.0, 4.0],
                                             residual_scale=2.0, sigma_data=1.0)))
    clone = build_model(cfg)
    clone.load_state_dict(model.state_dict())
    cond = torch.randn(2, 2, 9, 11)
    if objective == "edm":
        a, b = sample(model, cond, 3, num_steps=4), sample(clone, cond, 3, num_steps=4)
    else:
        a, b = predict(model, cond), predict(clone, cond)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_sample_shape_members_differ_and_scale_applies():
    cond = torch.randn(2, 2, 9, 11)
    small, large = _model("edm", scale=1.0), _model("edm", scale=3.0)
    a = sample(small, cond, 4, seed=1, num_steps=5)
    b = sample(large, cond, 4, seed=1, num_steps=5)
    assert a.shape == (2, 4, 1, 9, 11)
    assert not torch.allclose(a[:, 0], a[:, 1])
    torch.testing.assert_close(b, 3.0 * a)  # residual_scale only rescales the output


def test_bf16_sampling_on_cpu_is_close_to_fp32():
    model, cond = _model("edm"), torch.randn(1, 2, 8, 8)
    fp32 = sample(model, cond, 2, precision="fp32", num_steps=4)
    bf16 = sample(model, cond, 2, precision="bf16", num_steps=4)
    assert not torch.equal(fp32, bf16)
    torch.testing.assert_close(bf16, fp32, rtol=0.05, atol=0.05)


def test_regression_base_adds_the_mean_to_every_member_and_round_trips():
    """CorrDiff base: samples = regression prediction + the diffusion residual, member by member."""
    edm, reg = _model("edm"), _model("regression", scale=0.5)
    cfg = model_config("edm", 2, UNET, cond_mean=[1.0, -1.0], cond_std=[2.0, 4.0], residual_scale=2.0,
                       sigma_data=1.0)
    reg_cfg = model_config("regression", 2, UNET, cond_mean=[1.0, -1.0], cond_std=[2.0, 4.0], residual_scale=0.5,
                           sigma_data=1.0)
    based, based_cfg = with_mean(edm, cfg, reg, reg_cfg)
    cond = torch.randn(2, 2, 9, 11)
    plain = sample(edm, cond, 3, num_steps=4)
    total = sample(based, cond, 3, num_steps=4)
    torch.testing.assert_close(total, plain + predict(reg, cond)[:, None], rtol=1e-5, atol=1e-6)
    assert any(k.startswith("mean.") for k in based.state_dict())
    clone = build_model(json.loads(json.dumps(based_cfg)))  # what both MLflow load paths do
    clone.load_state_dict(based.state_dict())
    torch.testing.assert_close(sample(clone, cond, 3, num_steps=4), total, rtol=0, atol=0)


def test_a_mean_must_be_a_regression_under_a_diffusion_model():
    with pytest.raises(ValueError, match="residual base"):
        with_mean(_model("edm"), {}, _model("edm"), {})
