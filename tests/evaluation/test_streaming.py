"""The streaming replay on the session's real chain, served over HTTP: both modes score the held-out
positives as a direct computation does, and Redis is left exactly as it was."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import requests
from werkzeug.serving import make_server

from mlrec.core.constants import ITEMID, LABEL, TS, USERID
from mlrec.evaluation.streaming import EVENT_PREFIX, replay, restore, snapshot
from mlrec.online import redis_store


def test_replay_scores_both_modes_and_leaves_redis_as_it_was(chain, chain_redis_restored, event_worker):
    _, paths, app, _, _ = chain
    client = chain_redis_restored
    online = pd.read_parquet(paths.online_imp, columns=[USERID, ITEMID, LABEL, TS])
    users = sorted(online.loc[online[LABEL] == 1, USERID].unique())[:6]
    held = online[online[USERID].isin(users)]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        keys = [redis_store.user_key(u) for u in users]
        before = {key: client.hgetall(key) for key in keys}
        log_before = client.xlen(redis_store.EVENTS_STREAM)
        # the static lists, asked directly: what the "events off" mode must score
        lists = {
            u: [
                it["itemid"]
                for it in requests.post(f"{url}/ml/rec", json={"userid": int(u), "size": 10}).json()["item_list"]
            ]
            for u in users
        }
        positives = held[held[LABEL] == 1]
        expected_hits = np.mean([row[ITEMID] in lists[row[USERID]] for _, row in positives.iterrows()])

        saved = snapshot(client, users)
        off = replay(url, held, 10, stream=False, concurrency=2)
        assert off.targets == len(positives) and off.requests == len(users)
        assert off.hit_rate == round(float(expected_hits), 4)
        on = replay(url, held, 10, stream=True, concurrency=2)
        assert on.targets == len(positives) and on.requests == 2 * len(held)
        for u in users:  # the replayed events reached each user's filter
            state = redis_store.read_user(client, u)
            assert state is not None and set(held.loc[held[USERID] == u, ITEMID]) <= set(state.seen.tolist())

        restore(client, saved)
        assert redis_store.forget_events(client, EVENT_PREFIX) == len(held)
        assert {key: client.hgetall(key) for key in keys} == before
        assert client.xlen(redis_store.EVENTS_STREAM) == log_before
    finally:
        server.shutdown()
