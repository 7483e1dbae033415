"""``correction_training``: satellite 0.1° → radar max-pooled to 0.1° (diffusion + regression on residuals)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
