"""Reading and writing artifacts: atomic writes, and reads that say which step to run when a file is missing.

Every write goes to a temp file (or folder) in the same folder and is renamed into place, so a crash
(or Ctrl-C) never leaves a half-written artifact behind for the next step to trip over.
:func:`atomic_path` is the project's only implementation of that; everything that writes a file
(parquet, npy, JSON, checkpoints, ONNX, Triton repositories, raw datasets) goes through it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlrec.core.errors import MlrecError

if TYPE_CHECKING:  # pandas/pyarrow load lazily: the native runtime imports this module too
    import pandas as pd


class ArtifactError(MlrecError, FileNotFoundError):
    """A step's input artifact is missing or unreadable; the hint names the step to (re-)run."""


def _sibling(path: Path, tag: str) -> Path:
    """A hidden, unique name in ``path``'s folder (same filesystem, so a rename is atomic)."""
    return path.with_name(f".{path.name}.{tag}-{secrets.token_hex(4)}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temp path next to ``path``; when the block succeeds, it replaces ``path`` in one rename.

    The temp is an empty file (``directory=True``: an empty folder) created with the usual umask
    permissions, so a server running as another user can read what we write. On an exception the
    temp is removed and ``path`` is left as it was. A folder replaces the old one whole: the old
    one is moved aside, the new one renamed in, and the old one deleted (put back if the rename fails).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    if directory:
        tmp.mkdir()
    else:
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield tmp
        if directory:
            _replace_dir(tmp, path)
        else:
            tmp.replace(path)
    finally:
        _remove(tmp)


def _replace_dir(new: Path, path: Path) -> None:
    if not path.exists():
        new.rename(path)
        return
    old = _sibling(path, "old")
    path.rename(old)
    try:
        new.rename(path)
    except BaseException:
        old.rename(path)
        raise
    _remove(old)


@contextmanager
def scratch_dir(path: Path) -> Iterator[Path]:
    """A hidden, empty folder next to ``path`` (same filesystem), removed with its contents when the block
    ends: where an engine writes part files before :func:`consolidate_parquet` joins them."""
    tmp = _sibling(Path(path), "parts")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
    try:
        yield tmp
    finally:
        _remove(tmp)


def consolidate_parquet(parts: Sequence[Path], path: Path, dtypes: Mapping[str, str]) -> int:
    """The ``parts`` (parquet files, in this order) as one parquet file at ``path``, atomically; returns its
    row count. Columns come out in ``dtypes``' order, each cast to its numpy dtype (so a table an SQL
    engine wrote has the dtypes the numpy engine's has). Streams one row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.from_numpy_dtype(np.dtype(dtype))) for name, dtype in dtypes.items()])
    rows = 0
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for part in parts:
            source = pq.ParquetFile(part)
            for i in range(source.num_row_groups):
                table = source.read_row_group(i, columns=list(dtypes))
                writer.write_table(table.cast(schema, safe=True))
                rows += table.num_rows
        if rows == 0:
            writer.write_table(schema.empty_table())
    return rows


def write_text(path: Path, text: str) -> None:
    """``path.write_text(text)``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, data: Any, **dumps: Any) -> None:
    """``data`` as JSON (``dumps`` go to :func:`json.dumps`, e.g. ``indent``), atomically."""
    write_text(path, json.dumps(data, **dumps))


def read_json(path: Path, produced_by: str) -> Any:
    """A JSON artifact, or an error naming the step that writes it."""
    require(path, produced_by)
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise _unreadable(path, produced_by, exc) from exc


def require(path: Path, produced_by: str) -> None:
    """Raise :class:`ArtifactError` naming ``produced_by`` unless ``path`` is a file (no read)."""
    if not path.is_file():
        raise ArtifactError(f"{path}: not found", f"run `python {produced_by}` first (or `make offline`)")


def _unreadable(path: Path, produced_by: str, exc: BaseException) -> ArtifactError:
    return ArtifactError(f"{path}: unreadable ({exc})", f"re-run `python {produced_by}`")


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def read_parquet(path: Path, produced_by: str, columns: list[str] | None = None) -> pd.DataFrame:
    import pandas as pd

    require(path, produced_by)
    try:
        return pd.read_parquet(path, columns=columns)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise _unreadable(path, produced_by, exc) from exc


def read_matrix(path: Path, produced_by: str, columns: Sequence[str], dtype: Any = np.float32) -> np.ndarray:
    """``columns`` of a parquet file as one C-ordered ``dtype`` matrix, filled one row group at a time: the
    peak is the matrix plus one row group, where ``read_parquet(...)[columns].to_numpy()`` holds the Arrow
    table, the DataFrame and the matrix at once (15 GiB for ML-25M's seed train table instead of 4.4)."""
    import pyarrow.parquet as pq

    require(path, produced_by)
    try:
        source = pq.ParquetFile(path)
        out = np.empty((source.metadata.num_rows, len(columns)), dtype=dtype)
        start = 0
        for i in range(source.num_row_groups):
            group = source.read_row_group(i, columns=list(columns))
            for j, name in enumerate(columns):
                out[start : start + group.num_rows, j] = group.column(name).to_numpy()
            start += group.num_rows
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise _unreadable(path, produced_by, exc) from exc
    return out


def write_id_lists(lists: Mapping[int, Sequence[int] | np.ndarray], path: Path, key: str, value: str) -> None:
    """``{id: [int, ...]}`` -> parquet with columns ``key`` (int64) and ``value`` (list<int32>).

    Parquet instead of a pickle: loading it runs no code, any tool reads it, and the lists are
    stored as one flat array plus offsets (read back without a Python loop per id).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

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
    import pyarrow.parquet as pq

    require(path, produced_by)
    try:
        table = pq.read_table(path)
        ids = table.column(0).to_numpy()
        lists = table.column(1).combine_chunks()
        offsets = lists.offsets.to_numpy()
        flat = lists.values.to_numpy()[offsets[0] : offsets[-1]]
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise _unreadable(path, produced_by, exc) from exc
    if len(ids) == 0:
        return {}
    return dict(zip(ids.tolist(), np.split(flat, offsets[1:-1] - offsets[0]), strict=True))


def write_npy(arr: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, arr)


def read_npy(path: Path, produced_by: str) -> np.ndarray:
    require(path, produced_by)
    try:
        return np.load(path)
    except (ValueError, OSError, EOFError) as exc:
        raise _unreadable(path, produced_by, exc) from exc
