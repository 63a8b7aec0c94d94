"""Recall channels and their union: one implementation for the offline training set and the server.

Four channels propose candidates for a user; the ranker sees their union, with each channel's rank
and score as *request features* (computed per request, never stored in Feast):

=========  ==========================================================================================
channel    what it proposes
=========  ==========================================================================================
es         Elasticsearch hybrid recall: kNN on the 16-dim ALS vectors (+ a small genre-term bonus)
ease       item-to-item: EASE neighbours of the user's most recent items, recency-weighted
seq        item-to-item: what followed the user's most recent items in other users' sequences
popular    the most popular items of the last ``POPULAR_DAYS`` days
=========  ==========================================================================================

Why item-to-item from *recent* items: on the held-out protocol (a user's next 10 events) what the
user just did carries the most signal; a recency-weighted EASE beats plain EASE on validation.

The server calls :func:`neighbour_scores`, :func:`top_unseen` and :func:`union` with what it read
from Redis and Elasticsearch; the offline training set (:mod:`mlrec.offline.candidates`) calls the
very same functions with what the channel models computed at each training moment, so a request
feature means the same thing in training and serving (a parity test proves it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlrec.core.constants import RECALL_SIZE

ES, EASE, SEQ, POPULAR = "es", "ease", "seq", "popular"
CHANNELS: tuple[str, ...] = (ES, EASE, SEQ, POPULAR)
NEIGHBOUR_CHANNELS: tuple[str, ...] = (EASE, SEQ)  # served from per-item neighbour lists in Redis
CHANNEL_K: dict[str, int] = {ES: RECALL_SIZE, EASE: RECALL_SIZE, SEQ: 100, POPULAR: 50}
RECENT_N = 20  # the user's most recent items that drive the item-to-item channels
RECENT_DECAY = 0.9  # weight of the r-th most recent item: RECENT_DECAY ** r
NEIGHBOURS_N = 100  # neighbours kept per item
POPULAR_DAYS = 30
RRF_K = 60
# Elasticsearch's hybrid score: KNN_BOOST * max_inner_product(dot) + TERM_BOOST when a user term matches.
# Defined here (the server's query and the offline mimic of it both read them), not in the ES client.
TERM_BOOST, KNN_BOOST = 0.1, 0.9  # reciprocal-rank fusion constant: the union's recall order (before the ranker)

# Request features in model-input order: per channel log(1 + rank) (absent: log(2 + k)) and score (absent: 0).
REQUEST_FEATURES: tuple[str, ...] = (
    *(f"{c}_{kind}" for c in CHANNELS for kind in ("rank", "score")),
    "n_channels",
)


@dataclass(frozen=True)
class ChannelList:
    """One channel's candidates for one user, best first."""

    ids: np.ndarray  # int64
    scores: np.ndarray  # float32, same length

    @classmethod
    def empty(cls) -> ChannelList:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float32))


@dataclass(frozen=True)
class Candidates:
    """The union for one user in recall order (reciprocal-rank fusion), with its request features."""

    ids: np.ndarray  # int64 [n]
    features: np.ndarray  # float32 [n, len(REQUEST_FEATURES)]


def recency_weights(n: int, decay: float = RECENT_DECAY) -> np.ndarray:
    """Weight of the user's most recent items, most recent first."""
    return (decay ** np.arange(n)).astype(np.float32)


def neighbour_scores(
    nb_ids: np.ndarray, nb_weights: np.ndarray, decay: float = RECENT_DECAY
) -> tuple[np.ndarray, np.ndarray]:
    """Item scores from the neighbour lists of the user's recent items (row r = r-th most recent).

    score(j) = sum over recent items r of ``decay**r * weight(r -> j)``; id 0 is padding and dropped.
    Returns (ids, scores) for every item with a nonzero contribution, in id order.
    """
    nb_ids = np.asarray(nb_ids, dtype=np.int64)
    if nb_ids.size == 0:  # no recent items
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    nb_ids = nb_ids.reshape(len(nb_ids), -1)
    w = np.asarray(nb_weights, dtype=np.float64).reshape(nb_ids.shape) * recency_weights(len(nb_ids), decay)[:, None]
    ids, inverse = np.unique(nb_ids.ravel(), return_inverse=True)
    scores = np.bincount(inverse, weights=w.ravel(), minlength=len(ids))
    keep = ids > 0
    return ids[keep], scores[keep].astype(np.float32)


def top_unseen(ids: np.ndarray, scores: np.ndarray, seen: np.ndarray, k: int) -> ChannelList:
    """The k best (id, score) pairs whose id the user has not seen; ties go to the lower id."""
    ids, scores = np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32)
    keep = ~np.isin(ids, seen) & (ids > 0) & np.isfinite(scores)
    ids, scores = ids[keep], scores[keep]
    if len(ids) > 2 * k > 0:  # sort only what can make the top k: scores >= the k-th best (ties kept)
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        top = scores >= kth
        ids, scores = ids[top], scores[top]
    order = np.lexsort((ids, -scores))[:k]
    return ChannelList(ids[order], scores[order])


def union(lists: dict[str, ChannelList]) -> Candidates:
    """Every channel's candidates once, in reciprocal-rank-fusion order, with the request features."""
    present = [lists.get(c, ChannelList.empty()) for c in CHANNELS]
    all_ids = np.concatenate([cl.ids for cl in present]) if present else np.zeros(0, np.int64)
    ids = np.unique(all_ids)
    n = len(ids)
    feats = np.zeros((n, len(REQUEST_FEATURES)), dtype=np.float32)
    rrf = np.zeros(n, dtype=np.float64)
    for j, (channel, cl) in enumerate(zip(CHANNELS, present, strict=True)):
        rank = np.full(n, -1, dtype=np.int64)
        score = np.zeros(n, dtype=np.float32)
        pos = np.searchsorted(ids, cl.ids)
        rank[pos] = np.arange(len(cl.ids))
        score[pos] = cl.scores
        hit = rank >= 0
        feats[:, 2 * j] = np.log1p(np.where(hit, rank, CHANNEL_K[channel] + 1))
        feats[:, 2 * j + 1] = score
        feats[:, -1] += hit
        rrf += np.where(hit, 1.0 / (RRF_K + rank + 1), 0.0)
    order = np.lexsort((ids, -rrf))
    return Candidates(ids[order], feats[order])


def absent_features(n: int) -> np.ndarray:
    """Request features of ``n`` items no channel proposed (every rank "absent", every score 0)."""
    row = np.zeros(len(REQUEST_FEATURES), dtype=np.float32)
    for j, channel in enumerate(CHANNELS):
        row[2 * j] = np.log1p(CHANNEL_K[channel] + 1)
    return np.tile(row, (n, 1))
