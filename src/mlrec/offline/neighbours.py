"""Per-item neighbour lists for the item-to-item channels (:mod:`mlrec.offline.channels`).

Each table is ``(ids, weights)``, both ``[n_items, NEIGHBOURS_N]`` (row = item id, id 0 and weight 0
pad short rows): what an item the user just interacted with votes for. Two kinds:

- **EASE** (Steck 2019): row i of the closed-form item-item weights ``B``, the items i predicts in a
  ridge regression over whole histories (co-occurrence with the popularity of both sides removed);
- **sequential transitions**: the items that *followed* i within ``SEQ_LAGS`` events in users'
  time-ordered histories (a closer successor counts more), row-normalized with a shrinkage so a
  rarely seen item does not get confident votes. This is what a user picks *next*, which the
  held-out protocol measures.

Both are dense item x item matrices while built: fine up to ~10k items (ML-1M has 3.7k).
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


def ease_neighbours(x: scipy.sparse.csr_matrix, lam: float = EASE_LAMBDA, n: int = NEIGHBOURS_N):
    """EASE weights of the binary user x item matrix ``x``, truncated to each item's ``n`` best."""
    return top_neighbours(ease_weights(x, lam), n)


def transition_neighbours(
    events: pd.DataFrame, n_items: int, n: int = NEIGHBOURS_N, lags: int = SEQ_LAGS, shrink: float = SEQ_SHRINK
):
    """Sequential successors of each item; ``events`` grouped by user and ordered by time."""
    users, items = events[USERID].to_numpy(), events[ITEMID].to_numpy(np.int64)
    rows, cols, vals = [], [], []
    for lag in range(1, lags + 1):
        same = users[lag:] == users[:-lag]
        rows.append(items[:-lag][same])
        cols.append(items[lag:][same])
        vals.append(np.full(int(same.sum()), 1.0 / lag))
    t = scipy.sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_items, n_items)
    ).toarray()
    t /= t.sum(axis=1, keepdims=True) + shrink
    return top_neighbours(t, n)
