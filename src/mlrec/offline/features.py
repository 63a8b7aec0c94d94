"""The seed protocol's ranking feature set (59 features on ML-1M) and its saved meta (step 6 writes it
beside the served ranker's candidate examples, :mod:`mlrec.offline.rank_features`).

Candidates, in model-input order:
- sparse id:   userid, itemid (one embedding row per id; 0 = unknown)
- sparse side: gender, age, occupation (vocabulary codes), item_g0..item_g18 (multi-hot genre flags)
- dense:       user_g{k}_imp / user_g{k}_clk, the point-in-time genre counts of step 2,
               standardized with the train rows' mean and std
Side and dense columns that are constant on the train rows carry no signal and are dropped
(on ML-1M: item_g0 and user_g0_*, as no item lacks a genre), leaving 4 + 19 + 36 = 59.

All values are gathered with numpy fancy indexing from tables indexed by id; no row-wise joins.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from mlrec.core.constants import (
    AGE,
    AGE_MAPPING,
    GENDER,
    GENDER_MAPPING,
    ISTEST,
    ITEMID,
    LABEL,
    N_GENRES,
    OCCUPATION,
    OCCUPATION_MAPPING,
    USERID,
)
from mlrec.core.io import atomic_path
from mlrec.offline.feature_meta import Feature, FeatureMeta, Kind, Owner
from mlrec.offline.pit import COUNT_COLUMNS
from mlrec.offline.split import user_ranks

ISVAL = "isval"
CHUNK_ROWS = 1_000_000  # offline rows per row group when the seed tables are streamed to parquet
VAL_RATIO = 0.1  # each user's latest 10 % of train rows: the early-stopping slice (never the test set)


@dataclass(frozen=True)
class FeatureTables:
    meta: FeatureMeta
    train: pd.DataFrame  # label, isval, then meta.names (float32)
    test: pd.DataFrame  # label, then meta.names (float32)
    users: pd.DataFrame  # userid + user-owned features except the id (for the feature store)
    items: pd.DataFrame  # itemid + item-owned features except the id


@dataclass
class _Candidate:
    name: str
    kind: Kind
    owner: Owner
    cardinality: int
    table: np.ndarray  # values indexed by the owner's id (sparse) or by user id (dense, serving)
    rows: np.ndarray | None = None  # per offline row; None = gather table by the owner's id


# the user's vocabulary-coded side fields, in model-input order (the seed's and the served ranker's)
USER_CODES: tuple[tuple[str, dict], ...] = (
    (GENDER, GENDER_MAPPING),
    (AGE, AGE_MAPPING),
    (OCCUPATION, OCCUPATION_MAPPING),
)


def user_code_table(users: pd.DataFrame, column: str, mapping: dict) -> np.ndarray:
    """Vocabulary codes of one user column, indexed by userid (unknown values -> 0)."""
    table = np.zeros(int(users[USERID].max()) + 1, dtype=np.int64)
    codes = users[column].map(mapping).fillna(0).astype(np.int64).to_numpy()
    table[users[USERID].to_numpy()] = codes
    return table


def candidate_features(n_users: int, n_items: int) -> list[Feature]:
    """Every candidate column of the seed feature set in model-input order, before the constant ones are
    dropped (mean 0, std 1 until :func:`keep_and_scale` sets them). The numpy and the SQL engines both
    build from this list, so the order and the cardinalities have one definition."""
    specs = [Feature(USERID, "sparse_id", "user", n_users), Feature(ITEMID, "sparse_id", "item", n_items)]
    specs += [Feature(column, "sparse_side", "user", len(mapping)) for column, mapping in USER_CODES]
    specs += [Feature(f"item_g{g}", "sparse_side", "item", 2) for g in range(N_GENRES)]
    specs += [Feature(column, "dense", "user") for column in COUNT_COLUMNS]
    return specs


def keep_and_scale(spec: Feature, n: int, lo: float, hi: float, mean: float, std: float) -> Feature | None:
    """The feature as kept, from its train rows' count, min, max, mean and sample std; None = dropped.

    A side or dense column constant on the train rows carries no signal; a dense one is standardized
    with the train mean and std (std 1 when it is undefined or 0).
    """
    if spec.kind != "sparse_id" and (n == 0 or lo == hi):
        return None
    if spec.kind != "dense":
        return spec
    std = std if n > 1 and np.isfinite(std) and std > 0 else 1.0
    return replace(spec, mean=float(mean), std=float(std))


def _candidates(users, genres, offline, pit, latest) -> list[_Candidate]:
    n_users = int(users[USERID].max()) + 1
    n_items = genres.shape[0]
    serving = np.zeros((n_users, len(COUNT_COLUMNS)), dtype=np.float64)
    serving[latest[USERID].to_numpy()] = latest[COUNT_COLUMNS].to_numpy()
    tables: dict[str, tuple[np.ndarray, np.ndarray | None]] = {
        USERID: (np.arange(n_users), None),
        ITEMID: (np.arange(n_items), None),
    }
    for column, mapping in USER_CODES:
        tables[column] = (user_code_table(users, column, mapping), None)
    for g in range(N_GENRES):
        tables[f"item_g{g}"] = (genres[:, g].astype(np.int64), None)
    for j, column in enumerate(COUNT_COLUMNS):
        tables[column] = (serving[:, j], pit[column].to_numpy())
    return [
        _Candidate(f.name, f.kind, f.owner, f.cardinality, *tables[f.name])
        for f in candidate_features(n_users, n_items)
    ]


def validation_mask(offline_train: pd.DataFrame, ratio: float = VAL_RATIO) -> np.ndarray:
    """Each user's latest ``ratio`` of train rows (rows grouped by user, ordered by time)."""
    rank, count = user_ranks(offline_train[USERID].to_numpy())
    return rank >= np.ceil(count * (1 - ratio))


@dataclass(frozen=True)
class _Fitted:
    """What the train rows decide: the kept candidates, each with its feature (scaling), and the meta."""

    candidates: list[_Candidate]
    features: list[Feature]
    meta: FeatureMeta


def _fit(candidates: list[_Candidate], uid, iid, is_train, extra: dict | None) -> _Fitted:
    """One pass over the train rows, column by column: which candidates to keep and how to scale them."""
    kept, features = [], []
    for c in candidates:
        values = _values(c, uid, iid)[is_train].astype(np.float64)
        n = len(values)
        lo, hi = (values.min(), values.max()) if n and c.kind != "sparse_id" else (0.0, 0.0)
        mean, std = (values.mean(), values.std(ddof=1)) if n > 1 and c.kind == "dense" else (0.0, 1.0)
        feature = keep_and_scale(Feature(c.name, c.kind, c.owner, c.cardinality), n, lo, hi, mean, std)
        if feature is not None:  # else constant on train: no signal
            kept.append(c)
            features.append(feature)
    return _Fitted(kept, features, FeatureMeta(features=tuple(features), extra=dict(extra or {})))


def _values(c: _Candidate, uid: np.ndarray, iid: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
    """The candidate's raw value on the offline rows ``rows``."""
    return c.rows[rows] if c.rows is not None else c.table[(uid if c.owner == "user" else iid)[rows]]


def _block(fitted: _Fitted, uid: np.ndarray, iid: np.ndarray, rows: slice) -> np.ndarray:
    """The model input of the offline rows ``rows``: float32, one column per kept feature, dense ones scaled."""
    block = np.empty((len(uid[rows]), len(fitted.features)), dtype=np.float32, order="F")
    for j, (c, f) in enumerate(zip(fitted.candidates, fitted.features, strict=True)):
        values = _values(c, uid, iid, rows).astype(np.float64)
        block[:, j] = (values - f.mean) / f.std if c.kind == "dense" else values
    return block


def _entity_tables(fitted: _Fitted, users: pd.DataFrame, genres: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The kept side and dense features per user and per item (for the feature store)."""
    entity: dict[str, dict[str, np.ndarray]] = {"user": {}, "item": {}}
    for c, f in zip(fitted.candidates, fitted.features, strict=True):
        if c.kind != "sparse_id":
            table = c.table.astype(np.float64)
            entity[c.owner][c.name] = ((table - f.mean) / f.std if c.kind == "dense" else table).astype(np.float32)
    user_ids = np.sort(users[USERID].to_numpy())
    user_table = pd.DataFrame({USERID: user_ids, **{k: v[user_ids] for k, v in entity["user"].items()}})
    item_ids = np.flatnonzero(genres.any(axis=1))
    item_table = pd.DataFrame({ITEMID: item_ids, **{k: v[item_ids] for k, v in entity["item"].items()}})
    return user_table, item_table


def _heads(offline: pd.DataFrame, is_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per offline row: its label, and (train rows) whether it is in the validation slice."""
    isval = np.zeros(len(offline), dtype=np.int8)
    isval[is_train] = validation_mask(offline.loc[is_train])
    return offline[LABEL].to_numpy().astype(np.int8), isval


def build_features(
    users: pd.DataFrame,
    genres: np.ndarray,
    offline: pd.DataFrame,
    pit: pd.DataFrame,
    latest: pd.DataFrame,
    extra: dict | None = None,
) -> FeatureTables:
    """Assemble train/test matrices, entity tables and the meta in memory (see module docstring)."""
    uid, iid = offline[USERID].to_numpy(), offline[ITEMID].to_numpy()
    is_train = offline[ISTEST].to_numpy() == 0
    fitted = _fit(_candidates(users, genres, offline, pit, latest), uid, iid, is_train, extra)
    block = _block(fitted, uid, iid, slice(None))
    label, isval = _heads(offline, is_train)
    train = pd.DataFrame(block[is_train], columns=fitted.meta.names)
    train.insert(0, ISVAL, isval[is_train])
    train.insert(0, LABEL, label[is_train])
    test = pd.DataFrame(block[~is_train], columns=fitted.meta.names)
    test.insert(0, LABEL, label[~is_train])
    user_table, item_table = _entity_tables(fitted, users, genres)
    return FeatureTables(meta=fitted.meta, train=train, test=test, users=user_table, items=item_table)


def write_features(
    users: pd.DataFrame,
    genres: np.ndarray,
    offline: pd.DataFrame,
    pit: pd.DataFrame,
    latest: pd.DataFrame,
    train_path: Path,
    test_path: Path,
    extra: dict | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[FeatureMeta, int, int]:
    """The train and test tables of :func:`build_features`, streamed to parquet ``chunk_rows`` offline rows at
    a time (one row group each), so the peak is the inputs plus one chunk, not the whole float32 matrix
    (15M train rows x 59 features = 3.5 GB at ML-25M's size). Returns the meta and the two row counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    uid, iid = offline[USERID].to_numpy(), offline[ITEMID].to_numpy()
    is_train = offline[ISTEST].to_numpy() == 0
    fitted = _fit(_candidates(users, genres, offline, pit, latest), uid, iid, is_train, extra)
    label, isval = _heads(offline, is_train)
    names = fitted.meta.names
    float_fields = [pa.field(n, pa.float32()) for n in names]
    schemas = {
        True: pa.schema([pa.field(LABEL, pa.int8()), pa.field(ISVAL, pa.int8()), *float_fields]),
        False: pa.schema([pa.field(LABEL, pa.int8()), *float_fields]),
    }
    with (
        atomic_path(train_path) as train_tmp,
        atomic_path(test_path) as test_tmp,
        pq.ParquetWriter(train_tmp, schemas[True]) as train_out,
        pq.ParquetWriter(test_tmp, schemas[False]) as test_out,
    ):
        for start in range(0, len(offline), chunk_rows):
            rows = slice(start, start + chunk_rows)
            block = _block(fitted, uid, iid, rows)
            for train, out in ((True, train_out), (False, test_out)):
                mask = is_train[rows] == train
                heads = [label[rows][mask], *([isval[rows][mask]] if train else [])]
                columns = [*heads, *(block[mask, j] for j in range(len(names)))]
                out.write_table(pa.Table.from_arrays(columns, schema=schemas[train]))
    return fitted.meta, int(is_train.sum()), int((~is_train).sum())
