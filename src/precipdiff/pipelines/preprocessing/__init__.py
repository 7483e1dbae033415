"""``preprocessing``: QC, common extent, max pooling, transform, chronological split, patch index."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
