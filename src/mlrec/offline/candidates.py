"""The served ranker's training set: recall candidates at training moments, labelled by what came next.

The seed trained its ranker on "rating > 3 among rated items", which the server never asks it: at
serving time the ranker orders the *recall candidates* of a user who has done everything up to now.
So the examples here are exactly that situation, one step earlier in time, at two **moments**:

=========  ===============================================  =========================================
moment     channel models and features fit on               labels
=========  ===============================================  =========================================
train      each user's offline events except the last 20    the next 10 (offline events -20 .. -11)
val        each user's offline events except the last 10    the last 10 offline events
(serving)  every offline event                              the held-out last 10: never used here
=========  ===============================================  =========================================

At each moment every channel model (ALS vectors, EASE and sequential neighbours, popularity) is
refit on that moment's events only, each user's candidates come from the same channel functions the
server calls (:mod:`mlrec.offline.channels`), and every feature is computed from that moment's events
only (point in time: a later event changes no example). Label = the candidate is one of the user's
positives (rating > 3) among the next 10 events; negatives = the other candidates (sampled down to
``max_negatives`` per user) plus a few random unseen items. The ranker trains on the train moment
and early-stops on the val moment (:mod:`mlrec.offline.pipeline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from mlrec.core.constants import ITEMID, LABEL, ONLINE_LAST_N, SEED, TS, USERID
from mlrec.models.als import als_factors
from mlrec.offline.channels import (
    CHANNEL_K,
    EASE,
    ES,
    KNN_BOOST,
    NEIGHBOUR_CHANNELS,
    POPULAR,
    POPULAR_DAYS,
    RECENT_N,
    REQUEST_FEATURES,
    SEQ,
    TERM_BOOST,
    ChannelList,
    absent_features,
    neighbour_scores,
    top_unseen,
    union,
)
from mlrec.offline.neighbours import ease_neighbours, transition_neighbours
from mlrec.offline.pit import COUNT_COLUMNS, latest_counts, seen_items
from mlrec.offline.popular import DAY_S, recent_popular
from mlrec.offline.retrieval import interactions
from mlrec.offline.split import ordered, split_last_events
from mlrec.offline.terms import user_terms

MOMENT = "moment"
RECALL_POS = "recall_pos"  # the candidate's position in the union's recall order (not a feature)
TRAIN_MOMENT, VAL_MOMENT = 0, 1
USER_ACTIVITY = "user_activity"
ITEM_POP, ITEM_POP_RECENT, ITEM_AGE = "item_pop", "item_pop_recent", "item_age"


@dataclass(frozen=True)
class CandidateConfig:
    max_negatives: int = 150  # candidates the user did not pick, sampled per user and moment
    random_negatives: int = 5  # random unseen items outside the candidates, per user and moment
    seed: int = SEED


@dataclass
class Moment:
    """What the server would hold had the offline data ended with ``events``."""

    events: pd.DataFrame  # grouped by user, ordered by time
    catalogue: np.ndarray  # item ids in Elasticsearch
    user_vectors: np.ndarray
    item_vectors: np.ndarray
    terms: dict[int, list[int]]
    recent: dict[int, np.ndarray]
    seen: dict[int, np.ndarray]
    neighbours: dict[str, tuple[np.ndarray, np.ndarray]]
    popular: tuple[np.ndarray, np.ndarray]
    user_dense: dict[str, np.ndarray] = field(default_factory=dict)  # raw values by user id
    item_dense: dict[str, np.ndarray] = field(default_factory=dict)  # raw values by item id


def recent_items(events: pd.DataFrame, n: int = RECENT_N) -> dict[int, np.ndarray]:
    """userid -> the user's ``n`` most recent items, most recent first (``events`` from :func:`ordered`)."""
    return {u: items[::-1][:n].astype(np.int64) for u, items in seen_items(events).items()}


def entity_features(
    events: pd.DataFrame, genres: np.ndarray, n_users: int, n_items: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The ranker's dense user and item features as of the end of ``events`` (raw, unscaled), by id.

    User: the seed's genre impression/click counts over the latest window, and activity (log events).
    Item: log popularity overall and over the last ``POPULAR_DAYS`` days, log age in days (since its
    first event). "Now" is the last timestamp of ``events``: a later event changes nothing here.
    """
    ts, items, users = events[TS].to_numpy(), events[ITEMID].to_numpy(np.int64), events[USERID].to_numpy(np.int64)
    now = float(ts.max()) if len(ts) else 0.0
    user = user_dense_features(events, genres, np.arange(n_users), np.bincount(users, minlength=n_users)[:n_users])
    first = np.full(n_items, np.inf)
    np.minimum.at(first, items, ts.astype(np.float64))
    item = {
        ITEM_POP: np.log1p(np.bincount(items, minlength=n_items)[:n_items].astype(np.float64)),
        ITEM_POP_RECENT: np.log1p(
            np.bincount(items[ts >= now - POPULAR_DAYS * DAY_S], minlength=n_items)[:n_items].astype(np.float64)
        ),
        ITEM_AGE: np.log1p(np.where(np.isfinite(first), (now - first) / DAY_S, 0.0)),
    }
    return user, item


def user_dense_features(
    events: pd.DataFrame, genres: np.ndarray, userids: np.ndarray, n_events: np.ndarray
) -> dict[str, np.ndarray]:
    """The ranker's dense user features (raw, unscaled) of ``userids``, aligned with them: the genre
    counts over each user's latest ``PIT_WINDOW`` events in ``events``, and activity from ``n_events``
    (each user's count of every event, ``log1p``).

    Offline ``events`` are all of them; online (``POST /ml/event``) they are the user's window Redis
    keeps, which holds the latest ``PIT_WINDOW``, and the count is kept beside it: the same values."""
    userids = np.asarray(userids, dtype=np.int64)
    latest = latest_counts(events, genres)
    at = pd.Index(userids).get_indexer(latest[USERID].to_numpy())
    ours = at >= 0
    user: dict[str, np.ndarray] = {}
    for column in COUNT_COLUMNS:
        values = np.zeros(len(userids), np.float64)
        values[at[ours]] = latest[column].to_numpy()[ours]
        user[column] = values
    user[USER_ACTIVITY] = np.log1p(np.asarray(n_events, dtype=np.float64))
    return user


def fit_moment(
    events: pd.DataFrame, genres: np.ndarray, n_users: int, n_items: int, catalogue: np.ndarray, als: dict
) -> Moment:
    """Refit every channel model and feature table on ``events`` alone."""
    events = ordered(events)
    x = interactions(events, n_users, n_items)
    u, v = als_factors(
        x, int(als["factors"]), float(als["regularization"]), float(als["alpha"]), int(als["iterations"])
    )
    user_dense, item_dense = entity_features(events, genres, n_users, n_items)
    return Moment(
        events=events,
        catalogue=catalogue,
        user_vectors=u.astype(np.float32),
        item_vectors=v.astype(np.float32),
        terms=user_terms(latest_counts(events, genres)),
        recent=recent_items(events),
        seen=seen_items(events),
        neighbours={EASE: ease_neighbours(x), SEQ: transition_neighbours(events, n_items)},
        popular=recent_popular(events),
        user_dense=user_dense,
        item_dense=item_dense,
    )


def max_inner_product_score(dot: np.ndarray) -> np.ndarray:
    """Elasticsearch's ``max_inner_product`` similarity: a positive, order-preserving transform of the dot."""
    return np.where(dot < 0, 1.0 / (1.0 - np.minimum(dot, 0.0)), dot + 1.0)


def es_channel(m: Moment, userid: int, genres: np.ndarray, k: int = CHANNEL_K[ES]) -> ChannelList:
    """What the served hybrid Elasticsearch query returns: the kNN top k (exact here), scored as ES
    scores the hybrid: ``KNN_BOOST * max_inner_product(dot) + TERM_BOOST`` when a user term matches."""
    dot = m.item_vectors[m.catalogue].astype(np.float64) @ m.user_vectors[userid].astype(np.float64)
    knn = top_unseen(m.catalogue, dot.astype(np.float32), m.seen.get(userid, np.zeros(0, np.int64)), k)
    terms = m.terms.get(userid, [])
    match = genres[knn.ids][:, terms].any(axis=1) if terms and len(knn.ids) else np.zeros(len(knn.ids), bool)
    score = KNN_BOOST * max_inner_product_score(knn.scores.astype(np.float64)) + TERM_BOOST * match
    order = np.lexsort((knn.ids, -score))
    return ChannelList(knn.ids[order], score[order].astype(np.float32))


def user_channels(m: Moment, userid: int, genres: np.ndarray) -> dict[str, ChannelList]:
    """Every channel's list for one user, from the moment's models (the server's lists, offline)."""
    seen = m.seen.get(userid, np.zeros(0, np.int64))
    recent = m.recent.get(userid, np.zeros(0, np.int64))
    lists = {ES: es_channel(m, userid, genres)}
    for channel in NEIGHBOUR_CHANNELS:
        ids, weights = m.neighbours[channel]
        nb_ids, nb_scores = neighbour_scores(ids[recent], weights[recent])
        lists[channel] = top_unseen(nb_ids, nb_scores, seen, CHANNEL_K[channel])
    lists[POPULAR] = top_unseen(m.popular[0], m.popular[1], seen, CHANNEL_K[POPULAR])
    return lists


def moment_examples(
    m: Moment, labels: pd.DataFrame, genres: np.ndarray, cfg: CandidateConfig, moment: int
) -> pd.DataFrame:
    """Candidate rows of every user with a positive among ``labels`` (the events right after the moment):
    userid, itemid, label, moment, then the request features."""
    rng = np.random.default_rng(cfg.seed + moment)
    positives = ordered(labels.loc[labels[LABEL] == 1])
    pos_by_user = seen_items(positives)
    parts: dict[str, list[np.ndarray]] = {USERID: [], ITEMID: [], LABEL: [], RECALL_POS: [], "features": []}
    users = [u for u in sorted(pos_by_user) if u in m.seen]
    outside = np.ones(len(m.item_vectors), dtype=bool)  # by item id: not a candidate, seen or positive
    for userid in tqdm(users, desc=f"candidates (moment {moment})", unit="user", disable=None):
        cands = union(user_channels(m, userid, genres))
        label = np.isin(cands.ids, pos_by_user[userid])
        neg = np.flatnonzero(~label)
        if len(neg) > cfg.max_negatives:
            neg = rng.choice(neg, cfg.max_negatives, replace=False)
        keep = np.sort(np.r_[np.flatnonzero(label), neg])
        ids, feats, y, pos = cands.ids[keep], cands.features[keep], label[keep], keep
        # the catalogue minus candidates, seen and positives (setdiff1d's sorted result, via a mask:
        # setdiff1d sorted ~4k ids per user and was a quarter of this loop)
        outside[cands.ids], outside[m.seen[userid]], outside[pos_by_user[userid]] = False, False, False
        pool = m.catalogue[outside[m.catalogue]]
        outside[cands.ids], outside[m.seen[userid]], outside[pos_by_user[userid]] = True, True, True
        if cfg.random_negatives and len(pool):
            extra = rng.choice(pool, min(cfg.random_negatives, len(pool)), replace=False)
            ids = np.r_[ids, extra]
            feats = np.vstack([feats, absent_features(len(extra))])
            y = np.r_[y, np.zeros(len(extra), bool)]
            pos = np.r_[pos, len(cands.ids) + np.arange(len(extra))]
        for key, values in ((USERID, np.full(len(ids), userid)), (ITEMID, ids), (LABEL, y), (RECALL_POS, pos)):
            parts[key].append(values)
        parts["features"].append(feats)
    if not users:
        return pd.DataFrame()
    frame = pd.DataFrame(np.concatenate(parts.pop("features")), columns=list(REQUEST_FEATURES))
    frame.insert(0, RECALL_POS, np.concatenate(parts[RECALL_POS]).astype(np.int32))
    frame.insert(0, MOMENT, np.int8(moment))
    frame.insert(0, LABEL, np.concatenate(parts[LABEL]).astype(np.int8))
    frame.insert(0, ITEMID, np.concatenate(parts[ITEMID]).astype(np.int64))
    frame.insert(0, USERID, np.concatenate(parts[USERID]).astype(np.int64))
    return frame


def cap_negatives(labels: np.ndarray, max_rows: int, seed: int | Sequence[int]) -> np.ndarray:
    """Row indices (sorted) keeping every positive and a uniform sample of negatives, at most
    ``max_rows`` in all (more only when the positives alone exceed it); every row when under budget.

    Why: a ranker's epoch costs time in proportion to its rows, and past a few hundred thousand
    examples per moment more negatives of the same users buy little (see ``SERVED_MAX_ROWS`` in
    :mod:`mlrec.offline.pipeline`). A uniform sample of negatives shifts every logit by one constant,
    so the order of a user's candidates, all the ranker is asked for, is unchanged in expectation."""
    labels = np.asarray(labels)
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    if len(labels) <= max_rows:
        return np.arange(len(labels))
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels != 1)
    keep = max(max_rows - len(positives), 0)
    sample = np.random.default_rng(seed).choice(negatives, keep, replace=False)
    return np.sort(np.r_[positives, sample])


def training_moments(
    offline: pd.DataFrame, last_n: int = ONLINE_LAST_N
) -> tuple[tuple[pd.DataFrame, pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]]:
    """((train events, train labels), (val events, val labels)) carved from the offline events only."""
    val_events, val_labels = split_last_events(offline, last_n)
    train_events, train_labels = split_last_events(val_events, last_n)
    return (train_events, train_labels), (val_events, val_labels)
