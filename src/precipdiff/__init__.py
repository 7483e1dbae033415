"""precipdiff: satellite (IMERG) precipitation to radar-quality (MRMS) 1 km ensembles with EDM diffusion."""

__version__ = "0.1.0"
