"""Reading and writing artifacts: atomic writes, and reads that say which step to run when a file is missing.

Every write goes to a temp file in the same folder and is renamed into place, so a crash (or Ctrl-C)
never leaves a half-written artifact behind for the next step to trip over.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd


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


def write_pickle(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh, protocol=4)


def read_pickle(path: Path, produced_by: str) -> Any:
    _require(path, produced_by)
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except (pickle.UnpicklingError, EOFError) as exc:
        raise ArtifactError(f"{path}: corrupt pickle ({exc}); re-run `python {produced_by}`") from exc


def write_npy(arr: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)


def read_npy(path: Path, produced_by: str) -> np.ndarray:
    _require(path, produced_by)
    try:
        return np.load(path)
    except ValueError as exc:
        raise ArtifactError(f"{path}: unreadable ({exc}); re-run `python {produced_by}`") from exc
