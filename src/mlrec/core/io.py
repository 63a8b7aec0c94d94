"""Reading and writing artifacts: atomic writes, and reads that say which step to run when a file is missing.

Every write goes to a temp file in the same folder and is renamed into place, so a crash (or Ctrl-C)
never leaves a half-written artifact behind for the next step to trip over.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class ArtifactError(FileNotFoundError):
    """A step's input artifact is missing or unreadable; the message names the file and the fix."""


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.replace(path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _require(path: Path, produced_by: str) -> None:
    if not path.is_file():
        raise ArtifactError(f"{path}: not found; run `python {produced_by}` first (or `make offline`)")


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def read_parquet(path: Path, produced_by: str, columns: list[str] | None = None) -> pd.DataFrame:
    _require(path, produced_by)
    try:
        return pd.read_parquet(path, columns=columns)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise ArtifactError(f"{path}: unreadable ({exc}); re-run `python {produced_by}`") from exc


def write_id_lists(lists: Mapping[int, Sequence[int] | np.ndarray], path: Path, key: str, value: str) -> None:
    """``{id: [int, ...]}`` -> parquet with columns ``key`` (int64) and ``value`` (list<int32>).

    Parquet instead of a pickle: loading it runs no code, any tool reads it, and the lists are
    stored as one flat array plus offsets (read back without a Python loop per id).
    """
    ids = np.fromiter(lists.keys(), dtype=np.int64, count=len(lists))
    lengths = np.fromiter((len(v) for v in lists.values()), dtype=np.int64, count=len(lists))
    flat = (
        np.concatenate([np.asarray(v, dtype=np.int32) for v in lists.values()]) if len(lists) else np.zeros(0, np.int32)
    )
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int32)
    table = pa.table({key: ids, value: pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_id_lists(path: Path, produced_by: str) -> dict[int, np.ndarray]:
    """What :func:`write_id_lists` wrote: ``{id: int32 array}`` in the file's order."""
    _require(path, produced_by)
    try:
        table = pq.read_table(path)
        ids = table.column(0).to_numpy()
        lists = table.column(1).combine_chunks()
        offsets = lists.offsets.to_numpy()
        flat = lists.values.to_numpy()[offsets[0] : offsets[-1]]
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise ArtifactError(f"{path}: unreadable ({exc}); re-run `python {produced_by}`") from exc
    return dict(zip(ids.tolist(), np.split(flat, offsets[1:-1] - offsets[0])))


def write_npy(arr: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, arr)


def read_npy(path: Path, produced_by: str) -> np.ndarray:
    _require(path, produced_by)
    try:
        return np.load(path)
    except ValueError as exc:
        raise ArtifactError(f"{path}: unreadable ({exc}); re-run `python {produced_by}`") from exc
