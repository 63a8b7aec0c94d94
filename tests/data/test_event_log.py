"""Logged events become the next offline run's ratings: exported from the real Redis stream, merged
after the dataset's ratings, and held out as the users' latest events by the split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import redis

from mlrec.core.constants import ITEMID, RATING, TS, USERID
from mlrec.data.event_log import EVENT_ID, MAX_NEW_USER_IDS, export_events, merge_events
from mlrec.offline.split import split_ratings
from mlrec.online import redis_store


def _ratings() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    return pd.DataFrame(
        {
            USERID: np.repeat(np.arange(1, 11), n // 10).astype(np.int32),
            ITEMID: rng.integers(1, 50, n).astype(np.int32),
            RATING: rng.integers(1, 6, n).astype(np.int8),
            TS: rng.integers(0, 10**6, n).astype(np.int64),
        }
    )


def test_merged_events_are_the_users_latest_and_out_of_range_ones_are_skipped(tmp_path):
    ratings = _ratings()
    logged = pd.DataFrame(
        {
            USERID: [3, 3, 11, 10 + MAX_NEW_USER_IDS + 1, 4],
            ITEMID: [7, 8, 9, 7, 999],  # item 999: no rating names it
            RATING: [5, 4, 5, 5, 5],
            TS: [2 * 10**6, 2 * 10**6 + 1, 2 * 10**6, 2 * 10**6, 2 * 10**6],
            EVENT_ID: ["a", "b", "c", "d", "e"],
        }
    )
    path = tmp_path / "events.parquet"
    logged.to_parquet(path, index=False)
    merged, n, skipped = merge_events(ratings, path)
    assert (n, skipped) == (3, 2) and len(merged) == len(ratings) + 3
    assert merged.dtypes.to_dict() == ratings.dtypes.to_dict()
    online = split_ratings(merged).online
    last = online[online[USERID] == 3].sort_values(TS).tail(2)
    assert last[ITEMID].tolist() == [7, 8]  # the logged clicks are user 3's latest events
    assert merge_events(ratings, tmp_path / "none.parquet") == (ratings, 0, 0)


def test_export_reads_the_stream_once_per_event_id(services, tmp_path):
    client = redis.Redis(host=services.host, port=services.redis_port, db=3)
    client.flushdb()
    try:
        for user, item, event_id in ((1, 5, "x"), (2, 6, "y"), (1, 5, "x")):  # a retried id logged twice
            fields = {"userid": user, "itemid": item, "rating": 5, "timestamp": 1_700_000_000, "event_id": event_id}
            client.xadd(redis_store.EVENTS_STREAM, fields)
        assert export_events(client, tmp_path / "events" / "ml.parquet") == 2
        got = pd.read_parquet(tmp_path / "events" / "ml.parquet")
        assert got[[USERID, ITEMID, EVENT_ID]].values.tolist() == [[1, 5, "x"], [2, 6, "y"]]
        assert got[TS].tolist() == [1_700_000_000] * 2 and str(got[USERID].dtype) == "int32"
    finally:
        client.flushdb()
        client.close()
