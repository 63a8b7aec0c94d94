"""Users' recall inputs, the item-to-item neighbour lists and the popular list -> Redis
(:data:`~mlrec.core.paths.REDIS_SCRIPT`; layout in :mod:`mlrec.online.redis_store`)."""

from __future__ import annotations

from typing import NoReturn

import numpy as np

from mlrec.core import io
from mlrec.core.constants import ITEMID, LABEL, TS, USERID
from mlrec.core.log import summary, timed
from mlrec.core.paths import (
    ITEM_RECALL_SCRIPT,
    REDIS_SCRIPT,
    SPLIT_SCRIPT,
    TERM_RECALL_SCRIPT,
    TERMS_SCRIPT,
    VECTOR_RECALL_SCRIPT,
    Paths,
    step_name,
)
from mlrec.core.settings import Settings
from mlrec.loaders import LoadCheckError
from mlrec.offline.channels import NEIGHBOUR_CHANNELS
from mlrec.offline.split import ordered
from mlrec.offline.user_state import window_events
from mlrec.online import redis_store

POPULAR_SCORE = "score"  # the popular list's score column (``paths.popular``: itemid, score; best first)


def read_neighbours(paths: Paths, channel: str) -> tuple[np.ndarray, np.ndarray]:
    """One item-to-item channel's offline table: (ids int32, weights float32), ``[n_items, NEIGHBOURS_N]``."""
    ids_path, weights_path = paths.neighbours(channel)
    return io.read_npy(ids_path, ITEM_RECALL_SCRIPT), io.read_npy(weights_path, ITEM_RECALL_SCRIPT)


def read_popular(paths: Paths) -> tuple[np.ndarray, np.ndarray]:
    """The popularity channel's list (ids, scores), best first."""
    popular = io.read_parquet(paths.popular, ITEM_RECALL_SCRIPT, columns=[ITEMID, POPULAR_SCORE])
    return popular[ITEMID].to_numpy(np.int64), popular[POPULAR_SCORE].to_numpy(np.float32)


def _differs(what: str, settings: Settings) -> NoReturn:
    raise LoadCheckError(
        f"redis: {what} read back differs from the offline artifacts",
        f"check that nothing else writes to Redis db {settings.redis_db}, then re-run `python {REDIS_SCRIPT}`",
    )


def load_redis(paths: Paths, settings: Settings) -> dict:
    """One hash per user (terms, vector, seen filter, recent items, event window), one neighbour table per
    item-to-item channel, and the popular list; then a sample of each is read back and compared."""
    with timed() as t:
        terms = io.read_id_lists(paths.user_term, TERM_RECALL_SCRIPT)
        vectors = io.read_npy(paths.user_vector, VECTOR_RECALL_SCRIPT)
        seen = io.read_id_lists(paths.user_filter, TERMS_SCRIPT)
        recent = io.read_id_lists(paths.user_recent, ITEM_RECALL_SCRIPT)
        offline = io.read_parquet(paths.offline_imp, SPLIT_SCRIPT, columns=[USERID, ITEMID, LABEL, TS])
        windows = window_events(ordered(offline))
        n_events = offline[USERID].value_counts().to_dict()  # the activity feature's count, kept with the window
        neighbours = {channel: read_neighbours(paths, channel) for channel in NEIGHBOUR_CHANNELS}
        pop_ids, pop_scores = read_popular(paths)
        item_vectors = io.read_npy(paths.item_vector, VECTOR_RECALL_SCRIPT)
        als_params = io.read_json(paths.retrieval_params, VECTOR_RECALL_SCRIPT)
        client = redis_store.connect(settings, timeout=10.0)
        n = redis_store.write_users(client, terms, vectors, seen, recent, windows, n_events)
        written = {
            channel: redis_store.write_neighbours(client, channel, ids, weights)
            for channel, (ids, weights) in neighbours.items()
        }
        redis_store.write_popular(client, pop_ids, pop_scores)
        redis_store.write_fold_in(client, item_vectors, als_params)

    sample = min(seen)
    got = redis_store.read_user(client, sample)
    if (
        got is None
        or got.terms != terms.get(sample, np.zeros(0, np.int32)).tolist()
        or not np.array_equal(got.vector, vectors[sample])
        or not np.array_equal(got.seen, seen[sample])
        or not np.array_equal(got.recent, recent.get(sample, np.zeros(0, np.int32)))
        or not np.array_equal(got.window, windows[sample])
        or got.n_events != n_events[sample]
    ):
        _differs(redis_store.user_key(sample), settings)
    for channel, (ids, weights) in neighbours.items():
        # the sample user's recent items, plus the first item with neighbours and an item no table holds
        items = np.r_[got.recent, np.flatnonzero((ids != 0).any(axis=1))[:1], len(ids)].astype(np.int64)
        got_ids, got_weights = redis_store.read_neighbours(client, channel, items)
        width = got_ids.shape[1]
        expected_ids = np.zeros((len(items), ids.shape[1]), np.int32)
        expected_weights = np.zeros((len(items), ids.shape[1]), np.float32)
        known = items < len(ids)
        expected_ids[known], expected_weights[known] = ids[items[known]], weights[items[known]]
        if not (
            width <= ids.shape[1]
            and np.array_equal(got_ids, expected_ids[:, :width])
            and np.array_equal(got_weights, expected_weights[:, :width])
            and not expected_ids[:, width:].any()
        ):
            _differs(f"{redis_store.neighbour_key(channel)} (items {items.tolist()})", settings)
    fold = redis_store.read_fold_in(client, got.seen)
    expected = item_vectors[np.unique(got.seen)]
    if fold is None or not np.array_equal(fold.vectors, expected[expected.any(axis=1)]):
        _differs(f"{redis_store.ITEM_VECTORS_KEY} (the sample user's items)", settings)
    got_pop = redis_store.read_popular(client)
    if not (np.array_equal(got_pop[0], pop_ids) and np.array_equal(got_pop[1], pop_scores)):
        _differs(redis_store.POPULAR_KEY, settings)
    head = [round(float(v), 4) for v in got.vector[:4]]
    print(
        f"redis check: HGETALL {redis_store.user_key(sample)} -> term={got.terms} vector[:4]={head} "
        f"filter={len(got.seen)} recent={len(got.recent)} items, window={len(got.window)} events; "
        "neighbours of its recent items and the "
        f"popular list (matches offline)"
    )
    fields = dict(
        users=n,
        popular=len(pop_ids),
        **{f"neighbours_{channel}": count for channel, count in written.items()},
        sample_user=sample,
        seconds=t["seconds"],
    )
    summary(step_name(REDIS_SCRIPT), paths.metrics, **fields)
    client.close()
    return fields
