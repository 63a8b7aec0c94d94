"""Vector recall trained for top-K: 16-dim implicit-feedback MF (ALS), chosen on recall@200.

The seed's MF learns "rating > 3 among the items a user rated", an AUC over rated items; retrieval's
job is different: put the items a user picks next among the 200 candidates, out of the whole
catalogue. ALS (:mod:`mlrec.models.als`) fits every user x item cell of the interaction matrix
(every unrated item is a weighted negative), and its score is still a dot product, so Elasticsearch
serves it unchanged. Its hyperparameters are chosen on the validation split
(:func:`mlrec.offline.split.split_last_events`: each user's last 10 offline events), never on the
held-out events, by recall@``RECALL_SIZE`` over the full catalogue with seen items removed; the
chosen setting is then refit on every offline event. The seed's MF is still trained and reported
(its test AUC is the seed protocol's), but its vectors are no longer served.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse

from mlrec.core.constants import EMB_DIM, ITEMID, ONLINE_LAST_N, RECALL_SIZE, USERID
from mlrec.evaluation.heldout import held_out_positives
from mlrec.evaluation.metrics import hit_matrix
from mlrec.evaluation.metrics import recall_at_k as metric_recall_at_k
from mlrec.models.als import als_factors
from mlrec.offline.split import split_last_events


@dataclass(frozen=True)
class RetrievalConfig:
    """The ALS fit and the grid its regularization and confidence weight are chosen from."""

    factors: int = EMB_DIM
    iterations: int = 15
    regularization: tuple[float, ...] = (0.1, 1.0)
    alpha: tuple[float, ...] = (1.0, 10.0)
    k: int = RECALL_SIZE  # recall@k on validation: the candidates Elasticsearch hands the ranker
    last_n: int = ONLINE_LAST_N


@dataclass
class RetrievalResult:
    user_vectors: np.ndarray  # float32 [n_users, factors], row = user id
    item_vectors: np.ndarray  # float32 [n_items, factors], row = item id
    chosen: dict[str, float]
    val_recall: float
    grid: list[dict[str, float]] = field(default_factory=list)  # every setting tried and its val recall


def interactions(events: pd.DataFrame, n_users: int, n_items: int) -> scipy.sparse.csr_matrix:
    """Binary float32 user x item matrix: 1 where the user rated the item (any rating: a rating is a pick)."""
    rows, cols = events[USERID].to_numpy(np.int64), events[ITEMID].to_numpy(np.int64)
    x = scipy.sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    x.data[:] = 1.0  # duplicates summed by the constructor
    return x


def recall_at_k(
    user_vectors: np.ndarray, item_vectors: np.ndarray, seen: scipy.sparse.csr_matrix, held: pd.DataFrame, k: int
) -> float:
    """Mean over users with a held-out positive of |top-k ∩ positives| / |positives|.

    Top-k by dot product over every item id >= 1, the user's ``seen`` items removed (as the served
    filter removes them). Positives and the metric come from the evaluation (one definition of
    recall for the tuning here and the report); the top k need no order, so a partition suffices.
    """
    positives = held_out_positives(held)
    if len(positives.userids) == 0:
        return float("nan")
    k = min(k, item_vectors.shape[0] - 1)
    top = np.empty((len(positives.userids), k), dtype=np.int64)
    for lo in range(0, len(positives.userids), 1024):
        chunk = positives.userids[lo : lo + 1024]
        scores = user_vectors[chunk].astype(np.float64) @ item_vectors.T.astype(np.float64)
        scores[:, 0] = -np.inf  # id 0 is padding, never an item
        scores[seen[chunk].nonzero()] = -np.inf
        top[lo : lo + len(chunk)] = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    hits = hit_matrix(top, positives.relevant)
    return float(metric_recall_at_k(hits, positives.n_relevant, k).mean())


def train_retrieval(
    offline: pd.DataFrame, n_users: int, n_items: int, cfg: RetrievalConfig | None = None
) -> RetrievalResult:
    """Choose the ALS setting on validation recall@k, then refit it on every offline event."""
    cfg = cfg or RetrievalConfig()
    fit_events, held = split_last_events(offline, cfg.last_n)
    x_fit = interactions(fit_events, n_users, n_items)
    grid = []
    for reg, alpha in itertools.product(cfg.regularization, cfg.alpha):
        u, v = als_factors(x_fit, cfg.factors, reg, alpha, cfg.iterations)
        grid.append({"regularization": reg, "alpha": alpha, "val_recall": recall_at_k(u, v, x_fit, held, cfg.k)})
    best = max(grid, key=lambda g: g["val_recall"])  # first of equals: grid order
    u, v = als_factors(
        interactions(offline, n_users, n_items), cfg.factors, best["regularization"], best["alpha"], cfg.iterations
    )
    chosen = {
        "factors": cfg.factors,
        "iterations": cfg.iterations,
        "regularization": best["regularization"],
        "alpha": best["alpha"],
    }
    return RetrievalResult(u.astype(np.float32), v.astype(np.float32), chosen, best["val_recall"], grid)
