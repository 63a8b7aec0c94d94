"""mlrec.loaders.redis_users on tiny hand-made artifacts, against the real Redis (db 2, cleaned up).

The full-size load is checked item by item in tests/online/test_e2e.py; this one pins what the loader
reads (recent lists, both neighbour tables, the popular parquet) and that a missing artifact names
the step that writes it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from mlrec.core import io
from mlrec.core.constants import ITEMID, LABEL, TS, USERID
from mlrec.core.io import ArtifactError
from mlrec.core.paths import ITEM_RECALL_SCRIPT, Paths
from mlrec.core.settings import Settings
from mlrec.loaders.redis_users import POPULAR_SCORE, load_redis
from mlrec.offline.channels import NEIGHBOUR_CHANNELS
from mlrec.online import redis_store

DB = 2
USERS = (3, 5)  # db 2 holds nothing else; the keys are deleted after
N_ITEMS = 8


def _artifacts(paths: Paths) -> dict:
    rng = np.random.default_rng(1)
    terms = {USERS[0]: [1, 4], USERS[1]: []}
    seen = {USERS[0]: [1, 2, 3], USERS[1]: [5]}
    recent = {USERS[0]: [3, 1, 2], USERS[1]: [5]}
    vectors = np.zeros((USERS[1] + 1, 16), np.float32)  # row = user id, like the offline table
    vectors[list(USERS)] = rng.random((2, 16)).astype(np.float32)
    io.write_id_lists(terms, paths.user_term, USERID, "terms")
    io.write_id_lists(seen, paths.user_filter, USERID, ITEMID)
    io.write_id_lists(recent, paths.user_recent, USERID, ITEMID)
    io.write_npy(vectors, paths.user_vector)
    io.write_npy(rng.random((N_ITEMS, 16)).astype(np.float32) * (np.arange(N_ITEMS) > 0)[:, None], paths.item_vector)
    io.write_json(paths.retrieval_params, {"factors": 16, "iterations": 2, "regularization": 0.5, "alpha": 2.0})
    events = pd.DataFrame(  # the offline events behind ``seen``, in time order (the loader keeps a window)
        {
            USERID: [USERS[0]] * 3 + [USERS[1]],
            ITEMID: [2, 1, 3, 5],
            LABEL: np.array([1, 0, 1, 1], np.int8),
            TS: [10, 20, 30, 5],
        }
    )
    paths.offline_imp.parent.mkdir(parents=True, exist_ok=True)
    events.to_parquet(paths.offline_imp)
    tables = {}
    for k, channel in enumerate(NEIGHBOUR_CHANNELS):
        ids = np.zeros((N_ITEMS, 3), np.int32)
        weights = np.zeros((N_ITEMS, 3), np.float32)
        ids[1:4, : k + 1] = rng.integers(1, N_ITEMS, size=(3, k + 1))
        weights[1:4, : k + 1] = rng.random((3, k + 1)).astype(np.float32)
        ids_path, weights_path = paths.neighbours(channel)
        io.write_npy(ids, ids_path)
        io.write_npy(weights, weights_path)
        tables[channel] = ids, weights
    popular = pd.DataFrame(
        {ITEMID: np.array([6, 2, 7], np.int64), POPULAR_SCORE: np.array([0.5, 0.3, 0.2], np.float32)}
    )
    paths.popular.parent.mkdir(parents=True, exist_ok=True)
    popular.to_parquet(paths.popular)
    return dict(recent=recent, tables=tables, popular=popular, events=events)


@pytest.fixture
def settings(services: Settings) -> Settings:
    return dataclasses.replace(services, redis_db=DB)


def test_load_redis_writes_recent_lists_neighbour_tables_and_the_popular_parquet(tmp_path, settings):
    paths = Paths(tmp_path)
    art = _artifacts(paths)
    client = redis_store.connect(settings, timeout=10.0)
    keys = [redis_store.user_key(u) for u in USERS] + [redis_store.POPULAR_KEY]
    keys += [redis_store.neighbour_key(c) for c in NEIGHBOUR_CHANNELS]
    keys += [redis_store.ITEM_VECTORS_KEY, redis_store.ALS_KEY]
    try:
        fields = load_redis(paths, settings)
        assert fields["users"] == 2 and fields["popular"] == 3
        assert all(fields[f"neighbours_{c}"] == 3 for c in NEIGHBOUR_CHANNELS)
        for userid, recent in art["recent"].items():
            got = redis_store.read_user(client, userid)
            assert got is not None and got.recent.tolist() == recent
            window = art["events"][art["events"][USERID] == userid]  # the whole history: under WINDOW_N
            assert got.window[ITEMID].tolist() == window[ITEMID].tolist()
            assert got.window[TS].tolist() == window[TS].tolist()
            assert got.window[LABEL].tolist() == window[LABEL].tolist()
        item_vectors = np.load(paths.item_vector)
        fold = redis_store.read_fold_in(client, [3, 0, 1, 99, 3])  # 0 and 99 have no vector
        assert fold is not None and fold.ids.tolist() == [1, 3]
        np.testing.assert_array_equal(fold.vectors, item_vectors[[1, 3]])
        np.testing.assert_allclose(fold.gram, item_vectors.T @ item_vectors, rtol=1e-5)
        assert (fold.regularization, fold.alpha) == (0.5, 2.0)
        for channel, (ids, weights) in art["tables"].items():
            got_ids, got_weights = redis_store.read_neighbours(client, channel, np.arange(N_ITEMS))
            width = got_ids.shape[1]
            np.testing.assert_array_equal(got_ids, ids[:, :width])
            np.testing.assert_array_equal(got_weights, weights[:, :width])
        pop_ids, pop_scores = redis_store.read_popular(client)
        assert pop_ids.tolist() == [6, 2, 7] and np.array_equal(pop_scores, art["popular"][POPULAR_SCORE].to_numpy())
    finally:
        client.delete(*keys)
        client.close()


def test_load_redis_names_the_step_that_writes_a_missing_neighbour_table(tmp_path):
    """Every artifact is read before Redis is touched: no service needed."""
    paths = Paths(tmp_path)
    _artifacts(paths)
    paths.neighbours(NEIGHBOUR_CHANNELS[-1])[1].unlink()
    with pytest.raises(ArtifactError, match=ITEM_RECALL_SCRIPT):
        load_redis(paths, Settings(redis_port=1))
