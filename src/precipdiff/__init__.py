"""precipdiff: satellite (IMERG) precipitation to radar-quality (MRMS) 1 km ensembles with EDM diffusion."""

# Load the system SQLite before anything imports eccodes: the eccodes wheel bundles an older
# libsqlite3 (3.26) that, loaded first, makes MLflow's SQLite store refuse to start (needs >= 3.31).
import sqlite3  # noqa: F401, E402

from precipdiff._malloc import tune_malloc  # noqa: E402

tune_malloc()  # heap reuse for the U-Nets' large buffers (see precipdiff._malloc)

__version__ = "0.1.0"
