"""Top-K ranking metrics over many users at once: HitRate, Recall, NDCG, coverage, the recall curve.

Every method under evaluation is reduced to the same two arrays, so one set of vectorized
functions scores the served system and every baseline identically:

* ``ranked``: int64 ``[users, K]``, each row a user's list best first, padded with ``-1``
  (a service may return fewer than K items; padding never counts as a hit);
* ``hits``: bool ``[users, K]``, ``hits[u, j]`` = the j-th item of user u is one of u's relevant items
  (:func:`hit_matrix` builds it).

Relevance is binary. NDCG uses the standard ``1 / log2(rank + 1)`` discount and normalizes by the
ideal DCG over ``min(#relevant, K)`` items, so a user with 3 relevant items who gets all 3 on top
scores 1 at any K. Users with no relevant item have no defined recall or NDCG: the caller drops
them first (and counts them); passing one in raises :class:`MetricInputError`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAD = -1


class MetricInputError(ValueError):
    """Arrays handed to a metric have the wrong shape or content; the message says which and why."""


def pad_lists(lists: Sequence[Sequence[int]], width: int) -> np.ndarray:
    """Ragged per-user lists -> int64 ``[users, width]`` padded with ``-1`` (longer lists are cut)."""
    out = np.full((len(lists), width), PAD, dtype=np.int64)
    lengths = np.fromiter((min(len(x), width) for x in lists), dtype=np.int64, count=len(lists))
    if lengths.sum():
        rows = np.repeat(np.arange(len(lists)), lengths)
        cols = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[rows, cols] = np.concatenate(
            [np.asarray(x[:n], dtype=np.int64) for x, n in zip(lists, lengths, strict=True) if n]
        )
    return out


def _check_no_duplicates(ranked: np.ndarray) -> None:
    """A repeated item in one list would be counted twice and push recall above 1."""
    s = np.sort(ranked, axis=1)
    dup = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] != PAD)
    if dup.any():
        row = int(np.flatnonzero(dup.any(axis=1))[0])
        raise MetricInputError(
            f"ranked list of row {row} repeats an item ({s[row][1:][dup[row]][0]}); "
            "each list must hold distinct item ids"
        )


def hit_matrix(ranked: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """bool ``[users, K]``: is ``ranked[u, j]`` in ``relevant[u]``? One ``np.isin`` over (user, item) keys."""
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.ndim != 2 or len(ranked) != len(relevant):
        raise MetricInputError(
            f"ranked has shape {ranked.shape}, expected ({len(relevant)}, K): one row per user in `relevant`"
        )
    _check_no_duplicates(ranked)
    lengths = np.fromiter((len(r) for r in relevant), dtype=np.int64, count=len(relevant))
    rel_items = (
        np.concatenate([np.asarray(r, dtype=np.int64) for r in relevant]) if lengths.sum() else np.zeros(0, np.int64)
    )
    width = int(max(ranked.max(initial=0), rel_items.max(initial=0))) + 1
    rel_keys = np.repeat(np.arange(len(relevant), dtype=np.int64), lengths) * width + rel_items
    rec_keys = np.arange(len(ranked), dtype=np.int64)[:, None] * width + ranked
    return np.isin(rec_keys, rel_keys) & (ranked != PAD)


def _check_hits(hits: np.ndarray, k: int) -> np.ndarray:
    """``hits`` as a bool ``[users, K]`` array; a K below 1 or another shape is refused."""
    if k < 1:
        raise MetricInputError(f"k={k}: must be >= 1")
    hits = np.asarray(hits, dtype=bool)
    if hits.ndim != 2:
        raise MetricInputError(f"hits has shape {hits.shape}: expected [users, K]")
    return hits


def _prepare(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top-k hit columns and ``n_relevant``, checked: one count >= 1 per user, never below its hits."""
    hits = _check_hits(hits, k)
    n_relevant = np.asarray(n_relevant, dtype=np.int64)
    if n_relevant.shape != (len(hits),):
        raise MetricInputError(f"n_relevant has shape {n_relevant.shape}, expected ({len(hits)},)")
    if (n_relevant < 1).any():
        raise MetricInputError(
            f"{int((n_relevant < 1).sum())} users have no relevant item: "
            "drop them before scoring (their recall and NDCG are undefined)"
        )
    if (hits.sum(axis=1) > n_relevant).any():
        raise MetricInputError("a row has more hits than relevant items: n_relevant does not match hits")
    return hits[:, :k], n_relevant


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Per user: 1.0 when at least one of the top k is relevant, else 0.0."""
    return np.asarray(_check_hits(hits, k)[:, :k].any(axis=1), dtype=np.float64)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per user: relevant items in the top k / all of the user's relevant items."""
    top, n_rel = _prepare(hits, n_relevant, k)
    return top.sum(axis=1) / n_rel


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per user: DCG of the top k over the ideal DCG of ``min(#relevant, k)`` hits on top."""
    top, n_rel = _prepare(hits, n_relevant, k)
    disc = _discounts(k)
    dcg = top @ disc[: top.shape[1]]
    idcg = np.cumsum(disc)[np.minimum(n_rel, k) - 1]
    return dcg / idcg


def recall_curve(hits: np.ndarray, n_relevant: np.ndarray, max_k: int) -> np.ndarray:
    """Mean Recall@k for k = 1..max_k (index 0 is k=1); lists shorter than max_k stop gaining."""
    top, n_rel = _prepare(hits, n_relevant, max_k)
    per_user = np.cumsum(top, axis=1) / n_rel[:, None]
    curve = per_user.mean(axis=0) if len(per_user) else np.zeros(top.shape[1])
    if len(curve) < max_k:  # lists narrower than max_k: recall stays where the list ended
        curve = np.concatenate([curve, np.full(max_k - len(curve), curve[-1] if len(curve) else 0.0)])
    return curve


def coverage(ranked: np.ndarray, k: int, catalogue_size: int) -> float:
    """Share of the catalogue that appears in at least one user's top k."""
    if catalogue_size < 1:
        raise MetricInputError(f"catalogue_size={catalogue_size}: must be >= 1")
    if k < 1:
        raise MetricInputError(f"k={k}: must be >= 1")
    top = np.asarray(ranked)[:, :k]
    return len(np.unique(top[top != PAD])) / catalogue_size
