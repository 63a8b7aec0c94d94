"""The event worker's parts that need no service: a user's Feast row from their Redis state equals the
offline feature step's row for the same events, and one group-committed apply splits back per request.

The worker on the real services is exercised by ``test_events.py`` (the chain's ``event_worker``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlrec.core.constants import AGE, GENDER, ITEMID, LABEL, N_GENRES, OCCUPATION, TS, USERID
from mlrec.offline.candidates import USER_ACTIVITY, entity_features
from mlrec.offline.feature_meta import Feature, FeatureMeta
from mlrec.offline.pit import COUNT_COLUMNS
from mlrec.offline.rank_features import serving_tables
from mlrec.offline.split import ordered
from mlrec.offline.user_state import window_events
from mlrec.online.event_worker import Catalogue, split
from mlrec.online.events import Applied, Event
from mlrec.online.redis_store import UserRecall


def _meta(rng: np.random.Generator) -> FeatureMeta:
    dense = [*COUNT_COLUMNS, USER_ACTIVITY]
    features = [Feature(name, "sparse_side", "user", 3) for name in (GENDER, AGE, OCCUPATION)]
    features += [Feature(name, "dense", "user", 0, float(rng.normal()), float(rng.uniform(0.5, 2))) for name in dense]
    return FeatureMeta(features=tuple(features), extra={})


def test_a_users_row_from_redis_state_equals_the_offline_feature_steps_row():
    """Offline: every event -> ``entity_features`` -> ``serving_tables`` (what Feast materializes).
    Online: the window Redis keeps and the event count -> :meth:`Catalogue.user_rows` (what the worker
    pushes). Users with more events than the window, users without a users.dat row (codes 0), and
    users whose latest events carry no genre all get the same row both ways."""
    rng = np.random.default_rng(3)
    n_users, n_items = 9, 40
    genres = rng.random((n_items, N_GENRES)) < 0.2
    genres[5] = False  # an item without genres
    counts = rng.integers(1, 35, n_users - 1)
    events = ordered(
        pd.DataFrame(
            {
                USERID: np.repeat(np.arange(1, n_users), counts),
                ITEMID: rng.integers(1, n_items, counts.sum()),
                LABEL: rng.integers(0, 2, counts.sum()).astype(np.int8),
                TS: rng.integers(0, 10**6, counts.sum()),
            }
        )
    )
    users = pd.DataFrame(  # users 7 and 8 have no users.dat row
        {USERID: np.arange(1, 7), GENDER: list("MFMFMF"), AGE: [1, 18, 25, 35, 45, 56], OCCUPATION: np.arange(6)}
    )
    meta = _meta(rng)
    ids = np.arange(1, n_users)
    expected, _ = serving_tables(
        meta, entity_features(events, genres, n_users, n_items), users, genres, ids, np.arange(1, n_items)
    )
    codes = expected.set_index(USERID)[[GENDER, AGE, OCCUPATION]].loc[1:6]  # the offline table holds these
    windows = window_events(events)
    state = {
        u: UserRecall(
            u,
            [],
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            np.zeros(0, np.int32),
            windows[u],
            n_events=int(counts[u - 1]),
        )
        for u in ids.tolist()
    }
    got = Catalogue(genres, meta, codes.astype(np.float64), ()).user_rows(state)
    assert list(got.columns) == list(expected.columns)
    np.testing.assert_array_equal(got[USERID].to_numpy(), ids)
    pd.testing.assert_frame_equal(got.drop(columns=USERID), expected.drop(columns=USERID), rtol=1e-6)
    assert (got.loc[got[USERID] >= 7, [GENDER, AGE, OCCUPATION]] == 0).all().all()


def _events(user: int, ids: list[str]) -> list[Event]:
    return [Event(user, 1, 5, 0, i) for i in ids]


def test_a_group_committed_apply_splits_back_per_request():
    requests = [("a", _events(1, ["x", "y"])), ("b", _events(2, ["x", "z"])), ("c", _events(3, ["w"]))]
    applied = Applied(accepted=3, duplicates=2, users=[1, 2], new_users=[2], event_ids=["x", "y", "z"], folded=[2])
    parts = split(applied, requests)
    # "x" counts for the first request that has it; "w" was applied before (a duplicate)
    assert parts["a"] == Applied(2, 0, [1], [], ["x", "y"], [])
    assert parts["b"] == Applied(1, 1, [2], [2], ["z"], [2])
    assert parts["c"] == Applied(0, 1, [], [], [], [])
    assert sum(p.accepted for p in parts.values()) == applied.accepted
