"""``training``: composition only — ingestion + preprocessing + both residual trainings (fresh clone → models)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
