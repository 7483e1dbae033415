"""``ingestion``: any data source → the canonical ``satellite`` / ``radar`` pair (mm/h, 0.1° / 0.01°)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
