"""``dataset.json``: which raw dataset the artifacts under the data root were built from.

Written by ``s0_get_data`` and read by every later step (:func:`active_raw_dir`), so the
dataset is chosen once instead of being passed to each script. The raw folder is stored
relative to the data root, so a moved or mounted data root keeps working.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlrec.core.io import write_json
from mlrec.core.paths import Paths
from mlrec.data.errors import DataError, get_data_hint

_HINT = get_data_hint() + " first"


def write_marker(paths: Paths, dataset: str, raw_dir: Path, **extra: Any) -> Path:
    """Record ``dataset`` and its raw folder (atomic replace); returns the marker path."""
    raw_dir = Path(raw_dir).resolve()
    try:
        stored = str(raw_dir.relative_to(paths.root))
    except ValueError:
        stored = str(raw_dir)
    marker = paths.dataset_marker
    write_json(marker, {"dataset": dataset, "raw_dir": stored, **extra}, indent=2, sort_keys=True)
    return marker


def read_marker(paths: Paths) -> dict[str, Any]:
    marker = paths.dataset_marker
    if not marker.is_file():
        raise DataError(f"{marker} is missing", _HINT)
    try:
        data = json.loads(marker.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{marker} is not valid JSON ({exc})", _HINT) from exc
    if not isinstance(data, dict) or not {"dataset", "raw_dir"} <= data.keys():
        raise DataError(f"{marker} lacks the fields 'dataset' and 'raw_dir'", _HINT)
    return data


def active_dataset(paths: Paths) -> str:
    """The dataset name recorded by s0_get_data."""
    return str(read_marker(paths)["dataset"])


def active_raw_dir(paths: Paths) -> Path:
    """The raw folder recorded by s0_get_data; it must still exist."""
    raw_dir = paths.root / read_marker(paths)["raw_dir"]  # an absolute stored path wins the join
    if not raw_dir.is_dir():
        raise DataError(f"{paths.dataset_marker} points at {raw_dir}, which does not exist", _HINT)
    return raw_dir
