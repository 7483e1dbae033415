"""``experiment_held_out`` (docs/experiments.md); defined in ``pipelines/experiments``."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
