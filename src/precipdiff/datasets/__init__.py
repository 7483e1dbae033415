"""Project Kedro datasets (thin, documented extensions of kedro-datasets)."""

from .netcdf import NetCDFDataset
from .parquet import ParquetDataset

__all__ = ["NetCDFDataset", "ParquetDataset"]
