"""The prep steps on an SQL engine (DuckDB or Spark): the same inputs and artifacts as the numpy steps in
:mod:`mlrec.offline.pipeline`, computed by :mod:`mlrec.offline.prep_sql`'s queries.

What stays in Python on purpose: reading and checking the raw files (one loader for every engine, with
its error messages), the item-genre and user-code lookup tables (a few thousand rows), and the
keep-and-scale rule of the seed features (:func:`mlrec.offline.features.keep_and_scale`), which the
engine feeds with train-row statistics computed in SQL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlrec.core.constants import ISTEST, ITEMID, LABEL, POS, TS, USERID
from mlrec.data.movielens import RATING_DTYPES
from mlrec.offline import prep_sql as q
from mlrec.offline.engines import SqlEngine
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.offline.features import ISVAL, USER_CODES, candidate_features, keep_and_scale, user_code_table
from mlrec.offline.pit import COUNT_COLUMNS

# the artifacts' dtypes (the numpy engine's); an engine's tables are cast to them
OFFLINE_DTYPES = {
    **{c: RATING_DTYPES[c] for c in (USERID, ITEMID)},
    LABEL: "int8",
    TS: RATING_DTYPES[TS],
    POS: "int32",
    ISTEST: "int8",
}
ONLINE_DTYPES = {k: v for k, v in OFFLINE_DTYPES.items() if k != ISTEST}
PIT_DTYPES = dict.fromkeys(COUNT_COLUMNS, "uint8")
LATEST_DTYPES = {USERID: RATING_DTYPES[USERID], **PIT_DTYPES}


def split(engine: SqlEngine, ratings: pd.DataFrame, offline_path: Path, online_path: Path) -> tuple[int, int]:
    """Label and split ``ratings`` (userid, itemid, rating, ts; file order) into the two artifacts;
    returns their row counts."""
    engine.register_frame("ratings", ratings.assign(**{q.SEQ: np.arange(len(ratings), dtype=np.int64)}))
    engine.materialize("split", q.split_sql())
    n_offline = engine.write(q.split_part_sql("split", online=False), offline_path, OFFLINE_DTYPES)
    n_online = engine.write(q.split_part_sql("split", online=True), online_path, ONLINE_DTYPES)
    return n_offline, n_online


def register_lookups(engine: SqlEngine, genres: np.ndarray, users: pd.DataFrame | None = None) -> None:
    """The ``item_genres`` view (every item row of the genre matrix) and, given users, ``user_codes``."""
    flags = pd.DataFrame(genres.astype(np.int32), columns=q.GENRE_FLAGS)
    flags.insert(0, ITEMID, np.arange(len(genres), dtype=np.int64))
    engine.register_frame("item_genres", flags)
    if users is not None:
        codes = {column: user_code_table(users, column, mapping) for column, mapping in USER_CODES}
        table = pd.DataFrame(codes)
        table.insert(0, USERID, np.arange(len(table), dtype=np.int64))
        engine.register_frame("user_codes", table)


def counts(engine: SqlEngine, offline_path: Path, pit_path: Path, latest_path: Path) -> tuple[int, int]:
    """Point-in-time counts per offline event and latest-window counts per user (``item_genres``
    registered first); returns their row counts."""
    engine.register_parquet("offline", offline_path)
    n_pit = engine.write(q.pit_sql(), pit_path, PIT_DTYPES)
    n_latest = engine.write(q.latest_sql(), latest_path, LATEST_DTYPES)
    return n_pit, n_latest


def seed_features(
    engine: SqlEngine,
    offline_path: Path,
    n_users: int,
    n_items: int,
    train_path: Path,
    test_path: Path,
    extra: dict | None = None,
) -> tuple[FeatureMeta, int, int]:
    """The seed protocol's train and test tables (``item_genres`` and ``user_codes`` registered first):
    its meta, and the two tables' row counts."""
    engine.register_parquet("offline", offline_path)
    engine.materialize("seed_base", q.seed_base_sql())
    specs = candidate_features(n_users, n_items)
    stats = engine.rows(q.stats_sql("seed_base", specs))[0]
    n = int(stats[0])
    kept = []
    for i, spec in enumerate(specs):
        lo, hi, mean, std = (np.nan if v is None else float(v) for v in stats[1 + 4 * i : 5 + 4 * i])
        feature = keep_and_scale(spec, n, lo, hi, mean, std)
        if feature is not None:
            kept.append(feature)
    meta = FeatureMeta(features=tuple(kept), extra=dict(extra or {}))
    features = dict.fromkeys(meta.names, "float32")
    n_train = engine.write(
        q.seed_matrix_sql("seed_base", kept, train=True), train_path, {LABEL: "int8", ISVAL: "int8", **features}
    )
    n_test = engine.write(q.seed_matrix_sql("seed_base", kept, train=False), test_path, {LABEL: "int8", **features})
    return meta, n_train, n_test
