"""The data layer: fetch or generate a MovieLens-style dataset and read it in one canonical format.

Every dataset (ML-100K from the RecBole wheel, ML-1M from GroupLens, the synthetic generator)
is written as ML-1M's three ``::``-separated files under ``Paths.raw_dir(name)``, so later steps
only ever call :func:`load_dataset` on :func:`active_raw_dir`.
"""

from mlrec.data.errors import DataError
from mlrec.data.marker import active_dataset, active_raw_dir, read_marker, write_marker
from mlrec.data.movielens import load_movies, load_ratings, load_users
from mlrec.data.prepare import DATASETS, DEFAULT_SCALE, load_dataset, prepare_dataset, read_manifest

__all__ = [
    "DATASETS",
    "DEFAULT_SCALE",
    "DataError",
    "active_dataset",
    "active_raw_dir",
    "load_dataset",
    "load_movies",
    "load_ratings",
    "load_users",
    "prepare_dataset",
    "read_manifest",
    "read_marker",
    "write_marker",
]
