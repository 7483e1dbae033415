"""``evaluation``: every method on the same test hours, the tidy metrics table, figures, HTML report, champion alias."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
