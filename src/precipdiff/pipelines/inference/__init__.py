"""``inference``: satellite (IMERG or a canonical NetCDF) → 1 km ensemble NetCDF with registered models."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
