"""Experiments: ablations, residual variants, generalisation across seasons and regions, cost."""

from .pipeline import create_pipeline, experiment_pipelines

__all__ = ["create_pipeline", "experiment_pipelines"]
