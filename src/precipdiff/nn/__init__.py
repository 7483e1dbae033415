"""Plain-torch EDM models: U-Net, Table 1 preconditioning, losses, Algorithm 2 sampler, residual wrapper, EMA.

Knows nothing of Kedro or MLflow.
"""

from precipdiff.nn.ema import EMA
from precipdiff.nn.loss import EDMLoss, RegressionLoss, masked_mean, valid_mask
from precipdiff.nn.precond import EDMPrecond
from precipdiff.nn.residual import ResidualModel, build_model, model_config, with_mean
from precipdiff.nn.sampler import edm_sampler, sigma_steps
from precipdiff.nn.unet import UNet

__all__ = ["EMA", "EDMLoss", "EDMPrecond", "RegressionLoss", "ResidualModel", "UNet", "build_model", "with_mean",
           "edm_sampler", "masked_mean", "model_config", "sigma_steps", "valid_mask"]
