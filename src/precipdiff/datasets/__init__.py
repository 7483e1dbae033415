"""Project Kedro datasets (thin, documented extensions of kedro-datasets)."""

from .netcdf import NetCDFDataset

__all__ = ["NetCDFDataset"]
