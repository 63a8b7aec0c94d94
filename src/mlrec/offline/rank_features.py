"""The served ranker's feature matrix and meta, from the candidate examples of :mod:`mlrec.offline.candidates`.

Columns, in model-input order (the meta written here is what Feast, Triton and the server read):

- sparse id:   none. With user and item id embeddings the ranker memorizes the train moment's
               picks (which the next moment has already seen and filters out): on ml-100k validation
               NDCG@10 within the candidates fell from 0.270 to 0.235. The id spaces are in
               ``meta.extra`` (``n_users``, ``n_items``) for the tables indexed by id.
- sparse side: gender, age, occupation codes; item_g0..item_g18 genre flags   (the seed's)
- dense user:  the seed's 36 point-in-time genre counts, ``user_activity``      -> Feast ``ml_user``
- dense item:  ``item_pop``, ``item_pop_recent``, ``item_age``                  -> Feast ``ml_item``
- dense request: each channel's rank and score, ``n_channels``                  (per request)

User and item values of an example come from *its moment's* tables (point in time); a column that
is constant on the train-moment rows is dropped (no signal), and dense columns are standardized
with the train-moment rows' mean and std. :func:`serving_tables` applies the same meta to the
tables of the serving moment (every offline event), which the Feast loader pushes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlrec.core.constants import (
    ITEMID,
    LABEL,
    N_GENRES,
    USERID,
)
from mlrec.offline.candidates import MOMENT, RECALL_POS, TRAIN_MOMENT, Moment
from mlrec.offline.channels import REQUEST_FEATURES
from mlrec.offline.feature_meta import Feature, FeatureMeta, Kind, Owner
from mlrec.offline.features import USER_CODES, user_code_table


@dataclass(frozen=True)
class _Column:
    name: str
    kind: Kind
    owner: Owner
    cardinality: int = 0


def _columns(moment: Moment, n_users: int, n_items: int) -> list[_Column]:
    cols = []  # no id fields: see the module docstring
    for column, mapping in USER_CODES:
        cols.append(_Column(column, "sparse_side", "user", len(mapping)))
    cols += [_Column(f"item_g{g}", "sparse_side", "item", 2) for g in range(N_GENRES)]
    cols += [_Column(name, "dense", "user") for name in moment.user_dense]
    cols += [_Column(name, "dense", "item") for name in moment.item_dense]
    cols += [_Column(name, "dense", "request") for name in REQUEST_FEATURES]
    return cols


def _static_tables(users: pd.DataFrame, genres: np.ndarray, n_users: int) -> dict[str, np.ndarray]:
    """Values that do not change with time, by owner id: user codes and item genre flags."""
    tables: dict[str, np.ndarray] = {}
    for column, mapping in USER_CODES:
        codes = np.zeros(n_users, np.float64)
        t = user_code_table(users, column, mapping)
        codes[: min(len(t), n_users)] = t[:n_users]
        tables[column] = codes
    for g in range(N_GENRES):
        tables[f"item_g{g}"] = genres[:, g].astype(np.float64)
    return tables


def _values(
    col: _Column, examples: pd.DataFrame, moments: dict[int, Moment], static: dict[str, np.ndarray]
) -> np.ndarray:
    """One column's raw values for every example, each from its own moment's tables."""
    uid, iid = examples[USERID].to_numpy(np.int64), examples[ITEMID].to_numpy(np.int64)
    if col.kind == "sparse_id":
        return (uid if col.owner == "user" else iid).astype(np.float64)
    if col.owner == "request":
        return examples[col.name].to_numpy(np.float64)
    ids = uid if col.owner == "user" else iid
    if col.name in static:
        return static[col.name][ids]
    out = np.empty(len(examples), np.float64)
    moment_of = examples[MOMENT].to_numpy()
    for key, m in moments.items():
        rows = moment_of == key
        table = m.user_dense if col.owner == "user" else m.item_dense
        out[rows] = table[col.name][ids[rows]]
    return out


def build_rank_matrix(
    examples: pd.DataFrame,
    moments: dict[int, Moment],
    users: pd.DataFrame,
    genres: np.ndarray,
    n_users: int,
    n_items: int,
    extra: dict | None = None,
) -> tuple[FeatureMeta, pd.DataFrame]:
    """(meta, frame) from the candidate examples; the frame holds label, moment,
    userid, itemid, recall_pos (not features), then one float32 column per meta feature."""
    static = _static_tables(users, genres, n_users)
    is_train = examples[MOMENT].to_numpy() == TRAIN_MOMENT
    kept: list[Feature] = []
    data: dict[str, np.ndarray] = {}
    for col in _columns(next(iter(moments.values())), n_users, n_items):
        values = _values(col, examples, moments, static)
        train_values = values[is_train]
        if col.kind != "sparse_id" and (len(train_values) == 0 or train_values.min() == train_values.max()):
            continue  # constant on train: no signal
        mean, std = 0.0, 1.0
        if col.kind == "dense":
            mean = float(train_values.mean())
            std = float(train_values.std(ddof=1)) if len(train_values) > 1 else 1.0
            std = std if np.isfinite(std) and std > 0 else 1.0
            values = (values - mean) / std
        kept.append(Feature(col.name, col.kind, col.owner, col.cardinality, mean, std))
        data[col.name] = values.astype(np.float32)
    meta = FeatureMeta(features=tuple(kept), extra={**(extra or {}), "n_users": n_users, "n_items": n_items})
    frame = pd.DataFrame(data, copy=False)
    frame.insert(0, ITEMID, examples[ITEMID].to_numpy())
    frame.insert(0, USERID, examples[USERID].to_numpy())
    frame.insert(0, RECALL_POS, examples[RECALL_POS].to_numpy())
    frame.insert(0, MOMENT, examples[MOMENT].to_numpy())
    frame.insert(0, LABEL, examples[LABEL].to_numpy().astype(np.int8))
    return meta, frame


def scaled_table(
    meta: FeatureMeta, owner: Owner, key: str, ids: np.ndarray, values: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """``key`` then the meta's features of ``owner`` in meta order, each from ``values`` (raw, aligned with
    ``ids``) scaled as in training: one row per id, what Feast serves for that entity.

    Offline it builds the whole table (:func:`serving_tables`); online, ``POST /ml/event`` builds the rows
    of the users whose events it applied and pushes them to Feast."""
    out: dict[str, np.ndarray] = {key: np.asarray(ids, dtype=np.int64)}
    for f in meta.features:
        if f.owner == owner and f.kind != "sparse_id":
            out[f.name] = ((np.asarray(values[f.name], dtype=np.float64) - f.mean) / f.std).astype(np.float32)
    return pd.DataFrame(out)


def serving_tables(
    meta: FeatureMeta,
    dense: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    users: pd.DataFrame,
    genres: np.ndarray,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The meta's user and item features from ``dense`` = :func:`~mlrec.offline.candidates.entity_features`
    of every offline event, scaled as in training: what Feast serves."""
    user_dense, item_dense = dense
    static = _static_tables(users, genres, len(next(iter(user_dense.values()))))
    tables = []
    sides: tuple[tuple[Owner, str, np.ndarray, dict[str, np.ndarray]], ...] = (
        ("user", USERID, user_ids, user_dense),
        ("item", ITEMID, item_ids, item_dense),
    )
    for owner, key, ids, by_id in sides:
        names = [f.name for f in meta.of_owner(owner) if f.kind != "sparse_id"]
        values = {name: (static[name] if name in static else by_id[name])[ids] for name in names}
        tables.append(scaled_table(meta, owner, key, ids, values))
    return tables[0], tables[1]
