"""The one error the data layer raises for anything wrong with a dataset on disk or in transit.

A named error (not ``assert``, not a bare ``ValueError`` from pandas) so entry points can catch it
and print its message, which always names the file, and its hint, which says how to fix it.
"""

from __future__ import annotations

from pathlib import Path

from mlrec.core.errors import MlrecError
from mlrec.core.paths import DATA_SCRIPT


class DataError(MlrecError, ValueError):
    """A dataset file is missing, truncated, corrupt or cannot be fetched."""


def get_data_hint(dataset: str = "<ml-100k|ml-1m|ml-25m|ml-32m|synthetic>", *extra: str) -> str:
    """``run `python offline/preprocess/s0_get_data.py --dataset <dataset> ...` ``: how to (re)build a dataset."""
    return f"run `python {' '.join([DATA_SCRIPT, '--dataset', dataset, *extra])}`"


def refetch_hint(raw_dir: Path) -> str:
    """The fix for a broken raw folder: rebuild it from its source (the folder is named for its dataset)."""
    return f"delete {raw_dir} and {get_data_hint(Path(raw_dir).name, '--force')}"
