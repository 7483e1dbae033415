"""``downscaling_training``: radar 0.1° upsampled → radar 0.01° (diffusion + regression on residuals)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
