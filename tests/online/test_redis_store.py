"""The Redis layout of :mod:`mlrec.online.redis_store` against the real Redis: neighbour tables
(atomic replace, HMGET read-back, both channels in one round trip), users' recent items, the popular list.

Runs in Redis db 2 (the demo uses db 0, the chain db 1) with a unique channel name and user id,
and deletes what it wrote.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlrec.core.settings import Settings
from mlrec.online import redis_store

DB = 2


@pytest.fixture
def client(services: Settings):
    client = redis_store.connect(dataclasses.replace(services, redis_db=DB), timeout=10.0)
    yield client
    client.close()


def _table(rng: np.random.Generator, n_items: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A neighbour table like the offline one: best first, rows of random length padded with id 0 / weight 0."""
    ids = np.zeros((n_items, width), np.int32)
    weights = np.zeros((n_items, width), np.float32)
    for item in range(1, n_items):
        n = int(rng.integers(0, width + 1))
        ids[item, :n] = rng.choice(np.arange(1, n_items), size=n, replace=False)
        weights[item, :n] = np.sort(rng.random(n).astype(np.float32))[::-1]
    return ids, weights


def test_neighbour_tables_round_trip_and_are_replaced_whole(client, unique):
    rng = np.random.default_rng(0)
    channels = (f"{unique}-a", f"{unique}-b")
    keys = [redis_store.neighbour_key(c) for c in channels]
    try:
        tables = {c: _table(rng, 30, 6) for c in channels}
        for c, (ids, weights) in tables.items():
            written = redis_store.write_neighbours(client, c, ids, weights)
            assert written == int((ids != 0).any(axis=1).sum()) == client.hlen(redis_store.neighbour_key(c))
        items = np.array([5, 0, 29, 7, 999, 5])  # repeats, the padding item and an unknown item
        ids, weights = tables[channels[0]]
        got_ids, got_weights = redis_store.read_neighbours(client, channels[0], items)
        width = got_ids.shape[1]
        known = np.where(items < len(ids), items, 0)
        np.testing.assert_array_equal(got_ids, ids[known, :width] * (items < len(ids))[:, None])
        np.testing.assert_array_equal(got_weights, weights[known, :width] * (items < len(ids))[:, None])
        assert not ids[known, width:].any()

        both = redis_store.read_neighbour_channels(client, items, channels)
        for c in channels:
            for got, want in zip(both[c], redis_store.read_neighbours(client, c, items), strict=True):
                np.testing.assert_array_equal(got, want)
        assert {c: v[0].shape for c, v in redis_store.read_neighbour_channels(client, [], channels).items()} == {
            c: (0, 0) for c in channels
        }

        # a re-load replaces the table whole: an item that lost its neighbours has no field left
        ids2, weights2 = ids.copy(), weights.copy()
        ids2[5], weights2[5] = 0, 0
        redis_store.write_neighbours(client, channels[0], ids2, weights2)
        assert not redis_store.read_neighbours(client, channels[0], [5])[0].any()
        assert client.hexists(keys[0], "5") is False
        assert not any(k.decode().startswith(keys[0] + ":") for k in client.scan_iter(match=f"{keys[0]}*"))
        # an all-empty table leaves no key
        redis_store.write_neighbours(client, channels[0], np.zeros((3, 4), np.int32), np.zeros((3, 4), np.float32))
        assert client.exists(keys[0]) == 0
    finally:
        client.delete(*keys)


def test_user_recent_items_and_popular_list_in_one_round_trip(client, unique):
    userid = 900_000_000 + int(np.random.default_rng().integers(1e6))
    vec = np.linspace(-1, 1, 16, dtype=np.float32)
    try:
        redis_store.write_users(
            client, {userid: [2, 4]}, {userid: vec}, {userid: np.array([9, 3, 5])}, {userid: np.array([5, 9])}
        )
        redis_store.write_popular(client, np.array([7, 1, 2]), np.array([0.5, 0.25, 0.125], np.float32))
        user, (pop_ids, pop_scores) = redis_store.read_user_and_popular(client, userid)
        assert user is not None and user.terms == [2, 4] and user.recent.tolist() == [5, 9]
        assert user.seen.tolist() == [9, 3, 5] and np.array_equal(user.vector, vec)
        assert pop_ids.tolist() == [7, 1, 2] and pop_scores.tolist() == [0.5, 0.25, 0.125]
        missing, popular = redis_store.read_user_and_popular(client, userid + 1)
        assert missing is None and popular[0].tolist() == [7, 1, 2]
    finally:
        client.delete(redis_store.user_key(userid), redis_store.POPULAR_KEY)
