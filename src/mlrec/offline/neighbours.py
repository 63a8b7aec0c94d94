"""Per-item neighbour lists for the item-to-item channels (:mod:`mlrec.offline.channels`).

Each table is ``(ids, weights)``, both ``[n_items, NEIGHBOURS_N]`` (row = item id, id 0 and weight 0
pad short rows): what an item the user just interacted with votes for. Two kinds:

- **EASE** (Steck 2019): row i of the closed-form item-item weights ``B``, the items i predicts in a
  ridge regression over whole histories (co-occurrence with the popularity of both sides removed);
- **sequential transitions**: the items that *followed* i within ``SEQ_LAGS`` events in users'
  time-ordered histories (a closer successor counts more), row-normalized with a shrinkage so a
  rarely seen item does not get confident votes. This is what a user picks *next*, which the
  held-out protocol measures.

Both are dense item x item matrices while built, fine up to ~10k items (ML-1M has 3.7k, synthetic 10M
11.7k). Beyond, as at MovieLens-25M's 62k items (a dense matrix alone would be 31 GB):

- EASE is fit on the :data:`EASE_MAX_ITEMS` most interacted-with items (an inverse of that size takes
  about a minute on 2 cores); the others get no neighbours and vote for none;
- transitions are counted in a sparse matrix and each row's top ``n`` taken from its stored entries
  (:func:`sparse_top_neighbours`), the same lists as the dense way (a test compares them).

Up to those sizes nothing changes: the dense code runs, and its results are the ones measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse

from mlrec.core.constants import ITEMID, USERID
from mlrec.models.item_item import ease_weights
from mlrec.offline.channels import NEIGHBOURS_N

SEQ_LAGS = 5  # successors within this many events vote for a transition, weight 1 / lag
SEQ_SHRINK = 5.0  # added to each row's total before normalizing
EASE_LAMBDA = 300.0
EASE_MAX_ITEMS = 12_000  # EASE's dense inverse is O(items^3): above this, the most interacted-with items only
DENSE_MAX_ITEMS = 12_000  # transitions: a dense item x item matrix up to this many items, sparse above


def top_neighbours(weights: np.ndarray, n: int = NEIGHBOURS_N) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``n`` largest positive weights: (ids int32, weights float32), best first, padded with 0."""
    n = min(n, weights.shape[1])
    w = np.where(weights > 0, weights, 0.0)
    np.fill_diagonal(w, 0.0)
    # a stable full sort, not argpartition: ties at the n-th weight go to the lower id, whatever numpy's version
    idx = np.argsort(-w, axis=1, kind="stable")[:, :n]
    top = np.take_along_axis(w, idx, axis=1)
    idx = np.where(top > 0, idx, 0)
    return idx.astype(np.int32), top.astype(np.float32)


def sparse_top_neighbours(weights: scipy.sparse.csr_matrix, n: int = NEIGHBOURS_N) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_neighbours` of a sparse matrix, from its stored entries only (never densified):
    each row's ``n`` largest positive off-diagonal weights, ties to the lower id."""
    coo = weights.tocoo()
    keep = (coo.data > 0) & (coo.row != coo.col)
    rows, cols, vals = coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep]
    order = np.lexsort((cols, -vals, rows))  # by row, then weight descending, then id
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, np.arange(weights.shape[0]))
    rank = np.arange(len(rows)) - starts[rows]
    top = rank < n
    n = min(n, weights.shape[1])
    ids = np.zeros((weights.shape[0], n), np.int32)
    out = np.zeros((weights.shape[0], n), np.float32)
    ids[rows[top], rank[top]] = cols[top]
    out[rows[top], rank[top]] = vals[top]
    return ids, out


def ease_neighbours(
    x: scipy.sparse.csr_matrix, lam: float = EASE_LAMBDA, n: int = NEIGHBOURS_N, max_items: int = EASE_MAX_ITEMS
) -> tuple[np.ndarray, np.ndarray]:
    """EASE weights of the binary user x item matrix ``x``, truncated to each item's ``n`` best; fit on
    the ``max_items`` most interacted-with items when there are more (see the module docstring)."""
    n_items = x.shape[1]
    if n_items <= max_items:
        return top_neighbours(ease_weights(x, lam), n)
    counts = np.asarray(x.getnnz(axis=0)).ravel()
    kept = np.sort(np.argsort(-counts, kind="stable")[:max_items])
    sub_ids, sub_weights = top_neighbours(ease_weights(x[:, kept].tocsr(), lam), n)
    ids = np.zeros((n_items, sub_ids.shape[1]), np.int32)
    weights = np.zeros((n_items, sub_ids.shape[1]), np.float32)
    ids[kept] = np.where(sub_weights > 0, kept[sub_ids], 0)
    weights[kept] = sub_weights
    return ids, weights


def transition_neighbours(
    events: pd.DataFrame,
    n_items: int,
    n: int = NEIGHBOURS_N,
    lags: int = SEQ_LAGS,
    shrink: float = SEQ_SHRINK,
    dense_max_items: int = DENSE_MAX_ITEMS,
) -> tuple[np.ndarray, np.ndarray]:
    """Sequential successors of each item; ``events`` grouped by user and ordered by time."""
    users, items = events[USERID].to_numpy(), events[ITEMID].to_numpy(np.int64)
    rows, cols, vals = [], [], []
    for lag in range(1, lags + 1):
        same = users[lag:] == users[:-lag]
        rows.append(items[:-lag][same])
        cols.append(items[lag:][same])
        vals.append(np.full(int(same.sum()), 1.0 / lag))
    coo = scipy.sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_items, n_items)
    )
    if n_items > dense_max_items:
        t = coo.tocsr()  # duplicates summed
        totals = np.asarray(t.sum(axis=1)).ravel() + shrink
        return sparse_top_neighbours(scipy.sparse.diags(1.0 / totals) @ t, n)
    dense = coo.toarray()
    dense /= dense.sum(axis=1, keepdims=True) + shrink
    return top_neighbours(dense, n)
