"""The one error the data layer raises for anything wrong with a dataset on disk or in transit.

A named error (not ``assert``, not a bare ``ValueError`` from pandas) so entry points can catch it
and print its message, which always names the file and says how to fix it.
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A dataset file is missing, truncated, corrupt or cannot be fetched."""


def refetch_hint(raw_dir: Path) -> str:
    """The fix for a broken raw folder: rebuild it from its source (the folder is named for its dataset)."""
    dataset = Path(raw_dir).name
    return f"delete {raw_dir} and re-run `python offline/preprocess/s0_get_data.py --dataset {dataset} --force`"
