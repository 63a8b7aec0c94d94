"""The served ranker's training set as the pipeline wrote it (``paths.rank_examples`` of the session's
``offline_run``): it is carved from the offline events only, so the held-out events (each user's last
10, ``paths.online_imp``) never label an example nor enter a feature, and each moment's labels and
features are exactly those of :func:`mlrec.offline.candidates.training_moments`.
"""

import numpy as np
import pandas as pd
import pytest

from mlrec.core.constants import ITEMID, LABEL, ONLINE_LAST_N, TS, USERID
from mlrec.data import active_raw_dir
from mlrec.data.movielens import load_movies
from mlrec.offline.candidates import MOMENT, TRAIN_MOMENT, VAL_MOMENT, entity_features, training_moments
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.offline.pit import item_genre_matrix


@pytest.fixture(scope="module")
def data(offline_run):
    paths = offline_run.paths
    return (
        pd.read_parquet(paths.offline_imp),
        pd.read_parquet(paths.online_imp),
        pd.read_parquet(paths.rank_examples),
        FeatureMeta.load(paths.feature_meta),
    )


def _pairs(df: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(df[USERID].tolist(), df[ITEMID].tolist(), strict=True))


def test_held_out_events_are_later_than_every_offline_event(data):
    offline, online, _, _ = data
    assert (online.groupby(USERID).size() == ONLINE_LAST_N).all()
    first_online = online.groupby(USERID)[TS].min()
    last_offline = offline.groupby(USERID)[TS].max()
    assert (first_online >= last_offline.loc[first_online.index]).all()


def test_no_held_out_event_labels_an_example(data):
    """A positive example is a positive offline event of its moment's label window; a (user, item) the
    user only met in the held-out events is never a positive (it may be a candidate: then label 0)."""
    offline, online, examples, _ = data
    positives = examples[examples[LABEL] == 1]
    assert len(positives) > 0
    held_out_only = _pairs(online) - _pairs(offline)
    assert held_out_only, "the synthetic held-out events should hold items new to their user"
    assert not _pairs(positives) & held_out_only
    assert _pairs(positives) <= _pairs(offline[offline[LABEL] == 1])
    # held-out items are proposed as candidates (recall finds some of what came next), labelled 0
    assert _pairs(examples) & held_out_only


def test_each_moment_labels_exactly_its_next_events_positives(data):
    offline, _, examples, _ = data
    for key, (events, labels) in zip((TRAIN_MOMENT, VAL_MOMENT), training_moments(offline), strict=True):
        rows = examples[examples[MOMENT] == key]
        positives = _pairs(labels[labels[LABEL] == 1])
        pairs = list(zip(rows[USERID].tolist(), rows[ITEMID].tolist(), strict=True))
        np.testing.assert_array_equal(rows[LABEL].to_numpy(), [int(p in positives) for p in pairs])
        assert set(rows[USERID]) == {u for u, _ in positives} & set(events[USERID])
        assert not _pairs(rows) & _pairs(events)  # a candidate is never something done before the moment


def _brute_windows(offline: pd.DataFrame) -> dict[str, set[tuple[int, int, int]]]:
    """Per user, time-ordered (stable): events -20..-11 and the last 10, as (user, item, ts)."""
    out: dict[str, set] = {"train": set(), "val": set(), "train_events": set()}
    for user, grp in offline.groupby(USERID):
        rows = list(grp.sort_values(TS, kind="stable")[[ITEMID, TS]].itertuples(index=False, name=None))
        out["train"] |= {(user, i, t) for i, t in rows[-20:-10]}
        out["val"] |= {(user, i, t) for i, t in rows[-10:]}
        out["train_events"] |= {(user, i, t) for i, t in rows[:-20]}
    return out


def test_training_moments_are_each_users_offline_events_minus_20_to_minus_11_then_the_last_10(data):
    offline, online, _, _ = data
    (train_events, train_labels), (val_events, val_labels) = training_moments(offline)
    ref = _brute_windows(offline)

    def triples(df: pd.DataFrame) -> set[tuple[int, int, int]]:
        return set(zip(df[USERID].tolist(), df[ITEMID].tolist(), df[TS].tolist(), strict=True))

    assert triples(train_labels) == ref["train"] and len(train_labels) == len(ref["train"])
    assert triples(val_labels) == ref["val"] and len(val_labels) == len(ref["val"])
    assert triples(train_events) == ref["train_events"]
    assert len(val_events) + len(val_labels) == len(train_events) + len(train_labels) + len(val_labels) == len(offline)
    assert not triples(online) & (triples(val_events) | triples(val_labels))


def test_user_and_item_features_are_each_moments_own_events(data, offline_run):
    """Unscaled, an example's user and item features are :func:`entity_features` of its moment's events
    (not of every offline event, and never of the held-out ones)."""
    offline, _, examples, meta = data
    genres = item_genre_matrix(load_movies(active_raw_dir(offline_run.paths)))
    n_users, n_items = meta.id_space("user"), meta.id_space("item")
    entity = [f for f in meta.features if f.kind == "dense" and f.owner in ("user", "item")]
    assert {"user_activity", "item_pop", "item_pop_recent", "item_age"} <= {f.name for f in entity}
    serving_user, _ = entity_features(offline, genres, n_users, n_items)
    for key, (events, _) in zip((TRAIN_MOMENT, VAL_MOMENT), training_moments(offline), strict=True):
        rows = examples[examples[MOMENT] == key]
        user, item = entity_features(events, genres, n_users, n_items)
        for f in entity:
            table, ids = (user, rows[USERID]) if f.owner == "user" else (item, rows[ITEMID])
            raw = rows[f.name].to_numpy(np.float64) * f.std + f.mean
            np.testing.assert_allclose(
                raw, table[f.name][ids.to_numpy()], rtol=1e-5, atol=1e-4, err_msg=f"{key} {f.name}"
            )
        # the user's activity at the moment: the offline events minus the last 20 (train) or 10 (val)
        counts = offline.groupby(USERID).size().loc[rows[USERID]].to_numpy()
        drop = 20 if key == TRAIN_MOMENT else 10
        f_activity = meta.features[meta.names.index("user_activity")]
        activity = rows["user_activity"].to_numpy(np.float64) * f_activity.std + f_activity.mean
        np.testing.assert_allclose(activity, np.log1p(np.maximum(counts - drop, 0)), atol=1e-4)
        assert not np.allclose(activity, serving_user["user_activity"][rows[USERID].to_numpy()], atol=1e-3)
