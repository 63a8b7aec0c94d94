"""mlrec.core.io: the one atomic-write helper, and artifact reads that name the step to run."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from mlrec.core import io
from mlrec.core.errors import MlrecError
from mlrec.core.paths import TERMS_SCRIPT as PRODUCER


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_file_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "a.json"
    with io.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.exists() and not target.exists()
        tmp.write_text("one")
    assert target.read_text() == "one" and _names(target.parent) == ["a.json"]
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "one" and _names(target.parent) == ["a.json"]  # old file kept, no temp left


def test_atomic_file_gets_umask_permissions_not_mkstemp_0600(tmp_path):
    io.write_text(tmp_path / "f.txt", "x")
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o666 & ~_umask()


def test_atomic_directory_replaces_the_old_folder_whole(tmp_path):
    target = tmp_path / "repo" / "1"
    with io.atomic_path(target, directory=True) as tmp:
        (tmp / "old.bin").write_bytes(b"old")
    with io.atomic_path(target, directory=True) as tmp:
        (tmp / "new.bin").write_bytes(b"new")
    assert _names(target) == ["new.bin"] and _names(target.parent) == ["1"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~_umask()
    with pytest.raises(KeyboardInterrupt), io.atomic_path(target, directory=True) as tmp:
        (tmp / "partial.bin").write_bytes(b"?")
        raise KeyboardInterrupt
    assert _names(target) == ["new.bin"] and _names(target.parent) == ["1"]


def test_write_json_round_trip(tmp_path):
    io.write_json(tmp_path / "m.json", {"b": 1, "a": [1, 2]}, indent=2, sort_keys=True)
    assert (tmp_path / "m.json").read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}'


def test_id_lists_round_trip_keeps_order_types_and_empty_lists(tmp_path):
    lists = {7: [3, 1, 2], 2: np.array([], dtype=np.int64), 5: np.array([9], dtype=np.int16), 1: [2**31 - 1]}
    path = tmp_path / "lists.parquet"
    io.write_id_lists(lists, path, key="userid", value="itemid")
    got = io.read_id_lists(path, PRODUCER)
    assert list(got) == [7, 2, 5, 1]
    for key, value in lists.items():
        assert got[key].dtype == np.int32 and got[key].tolist() == list(np.asarray(value).tolist())
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    assert schema.names == ["userid", "itemid"] and str(schema.field("itemid").type) == "list<element: int32>"


def test_id_lists_empty_mapping(tmp_path):
    io.write_id_lists({}, tmp_path / "e.parquet", key="k", value="v")
    assert io.read_id_lists(tmp_path / "e.parquet", PRODUCER) == {}


def test_missing_artifact_names_the_step_to_run(tmp_path):
    with pytest.raises(io.ArtifactError) as err:
        io.read_id_lists(tmp_path / "nope.parquet", PRODUCER)
    assert isinstance(err.value, MlrecError) and isinstance(err.value, FileNotFoundError)
    assert err.value.message == f"{tmp_path / 'nope.parquet'}: not found"
    assert err.value.hint == f"run `python {PRODUCER}` first (or `make offline`)"


@pytest.mark.parametrize(
    "content",
    [b"PAR1 this is not parquet", b""],
    ids=["garbage", "empty"],
)
def test_corrupt_id_lists_file_is_an_artifact_error(tmp_path, content):
    path = tmp_path / "lists.parquet"
    path.write_bytes(content)
    with pytest.raises(io.ArtifactError, match="unreadable") as err:
        io.read_id_lists(path, PRODUCER)
    assert err.value.hint == f"re-run `python {PRODUCER}`"


def test_truncated_id_lists_file_is_an_artifact_error(tmp_path):
    path = tmp_path / "lists.parquet"
    io.write_id_lists({1: [1, 2, 3], 2: [4]}, path, key="k", value="v")
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(io.ArtifactError, match="unreadable"):
        io.read_id_lists(path, PRODUCER)


def test_a_parquet_without_the_list_column_is_an_artifact_error(tmp_path):
    import pandas as pd

    path = tmp_path / "flat.parquet"
    io.write_parquet(pd.DataFrame({"k": [1, 2]}), path)
    with pytest.raises(io.ArtifactError, match="unreadable"):
        io.read_id_lists(path, PRODUCER)


def test_npy_round_trip_and_corrupt_file(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    io.write_npy(arr, tmp_path / "v.npy")
    np.testing.assert_array_equal(io.read_npy(tmp_path / "v.npy", PRODUCER), arr)
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(io.ArtifactError, match="unreadable"):
        io.read_npy(tmp_path / "bad.npy", PRODUCER)


def test_read_matrix_fills_every_row_group_in_order(tmp_path):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlrec.core.io import ArtifactError, read_matrix

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=1003), "b": rng.integers(0, 9, 1003), "label": rng.integers(0, 2, 1003)})
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=100)
    assert pq.ParquetFile(path).num_row_groups == 11
    got = read_matrix(path, "some_step.py", ["b", "a"], np.float32)
    assert got.flags["C_CONTIGUOUS"] and got.dtype == np.float32
    np.testing.assert_array_equal(got, frame[["b", "a"]].to_numpy(np.float32))
    with pytest.raises(ArtifactError, match="not found"):
        read_matrix(tmp_path / "missing.parquet", "some_step.py", ["a"])
