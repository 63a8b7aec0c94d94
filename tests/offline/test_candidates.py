"""The served ranker's training set (mlrec.offline.candidates): the channel inputs at a moment, the
Elasticsearch mimic, the training moments, and no leakage from after a moment into its examples.

The leakage tests build the examples the way ``pipeline.run_features`` does (fit the moment, collect
the candidates, build the feature matrix) on a small synthetic event frame, then change events after
the moment and rebuild: every feature of every example must be unchanged. Changing an event before
the moment must change something, so the comparison can fail.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from mlrec.core.constants import AGE, GENDER, ITEMID, LABEL, N_GENRES, OCCUPATION, TS, USERID
from mlrec.offline.candidates import (
    DAY_S,
    ITEM_AGE,
    ITEM_POP,
    ITEM_POP_RECENT,
    MOMENT,
    RECALL_POS,
    TRAIN_MOMENT,
    USER_ACTIVITY,
    VAL_MOMENT,
    CandidateConfig,
    Moment,
    cap_negatives,
    entity_features,
    es_channel,
    fit_moment,
    max_inner_product_score,
    moment_examples,
    ordered,
    recent_items,
    recent_popular,
    training_moments,
    user_channels,
)
from mlrec.offline.channels import (
    CHANNEL_K,
    EASE,
    ES,
    KNN_BOOST,
    POPULAR,
    POPULAR_DAYS,
    REQUEST_FEATURES,
    SEQ,
    TERM_BOOST,
    union,
)
from mlrec.offline.pit import COUNT_COLUMNS
from mlrec.offline.rank_features import build_rank_matrix


# -- recent items and the popularity channel ------------------------------------------------------
def _frame(rows, columns=(USERID, ITEMID, TS)) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


def test_recent_items_are_the_latest_first_ties_keep_file_order():
    events = ordered(_frame([(2, 7, 5), (1, 10, 3), (1, 11, 1), (1, 12, 3), (1, 13, 9), (2, 8, 1)]))
    # user 1 by time: 11@1, 10@3, 12@3 (same time: file order), 13@9
    assert {u: v.tolist() for u, v in recent_items(events).items()} == {1: [13, 12, 10, 11], 2: [7, 8]}
    assert {u: v.tolist() for u, v in recent_items(events, n=2).items()} == {1: [13, 12], 2: [7, 8]}
    assert recent_items(events)[1].dtype == np.int64
    assert recent_items(ordered(_frame([]))) == {}


def _day(d: float) -> int:
    return int(d * DAY_S)


def _pop_events() -> pd.DataFrame:
    day = _day
    rows = [(1, 1, day(0)), (2, 1, day(1)), (3, 1, day(2))]  # item 1: old, 3 events
    rows += [(1, 2, day(50)), (2, 2, day(55))]  # item 2: 2 recent
    rows += [(3, 3, day(59)), (1, 3, day(60))]  # item 3: 2 recent; day 60 is "now"
    rows += [(2, 4, day(10)), (3, 4, day(60))]  # item 4: 1 recent of 2
    rows += [(1, 5, day(30))]  # item 5: exactly POPULAR_DAYS before now: recent (inclusive)
    return _frame(rows)


def test_recent_popular_hand_computed():
    assert POPULAR_DAYS == 30
    ids, share = recent_popular(_pop_events())
    # recent counts 2: 2, 3: 2, 4: 1, 5: 1, 1: 0; ties by all-time count (2: 2 = 3: 2, 4: 2 > 5: 1), then id
    assert ids.tolist() == [2, 3, 4, 5, 1]
    np.testing.assert_allclose(share, [2 / 6, 2 / 6, 1 / 6, 1 / 6, 0.0], rtol=1e-6)
    assert ids.dtype == np.int64 and share.dtype == np.float32
    assert recent_popular(_pop_events(), top=3)[0].tolist() == [2, 3, 4]
    # last 5 days (from day 55): 3 has 2, 2 and 4 have 1 each (all-time 2 each: lower id), 1 beats 5 on all-time
    ids, share = recent_popular(_pop_events(), days=5)
    assert ids.tolist() == [3, 2, 4, 1, 5]
    np.testing.assert_allclose(share, [2 / 4, 1 / 4, 1 / 4, 0, 0], rtol=1e-6)
    ids, share = recent_popular(_frame([]))
    assert len(ids) == len(share) == 0


def test_entity_features_hand_computed():
    events = ordered(_pop_events().assign(**{LABEL: 1}))
    genres = np.zeros((7, N_GENRES), bool)
    genres[:, 1] = True
    user, item = entity_features(events, genres, n_users=4, n_items=7)
    np.testing.assert_allclose(user[USER_ACTIVITY], np.log1p([0, 4, 3, 3]))
    np.testing.assert_allclose(item[ITEM_POP], np.log1p([0, 3, 2, 2, 2, 1, 0]))
    np.testing.assert_allclose(item[ITEM_POP_RECENT], np.log1p([0, 0, 2, 2, 1, 1, 0]))
    np.testing.assert_allclose(item[ITEM_AGE], np.log1p([0, 60, 10, 1, 50, 30, 0]))  # days since first event
    assert user["user_g1_imp"].tolist() == [0, 4, 3, 3] and list(user)[: len(COUNT_COLUMNS)] == COUNT_COLUMNS


# -- the Elasticsearch mimic ----------------------------------------------------------------------
def test_max_inner_product_score_is_elasticsearchs():
    np.testing.assert_allclose(max_inner_product_score(np.array([-3.0, -1.0, 0.0, 0.5, 2.0])), [0.25, 0.5, 1, 1.5, 3])


def _moment(rng, n_users=4, n_items=30, dim=3, **overrides) -> Moment:
    fields = dict(
        events=_frame([]),
        catalogue=np.arange(1, n_items, dtype=np.int64),
        user_vectors=rng.normal(size=(n_users, dim)).astype(np.float32),
        item_vectors=rng.normal(size=(n_items, dim)).astype(np.float32),
        terms={},
        recent={},
        seen={},
        neighbours={},
        popular=(np.zeros(0, np.int64), np.zeros(0, np.float32)),
    )
    fields.update(overrides)
    return Moment(**fields)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [5, 200])
def test_es_channel_is_the_knn_top_k_sorted_by_the_hybrid_score(seed, k):
    rng = np.random.default_rng(seed)
    genres = rng.random((30, N_GENRES)) < 0.3
    seen = np.array([3, 4, 17])
    m = _moment(rng, terms={1: [2, 5], 2: []}, seen={1: seen, 2: seen})
    for user in (1, 2, 3):  # with terms, without terms, unknown to the moment (nothing seen)
        got = es_channel(m, user, genres, k=k)
        user_seen = set(m.seen.get(user, np.zeros(0)).tolist())
        # the dot as Elasticsearch holds it (float32), the hybrid score in float64 as the mimic sums it
        dots = {
            int(i): float(np.float32(m.item_vectors[i].astype(np.float64) @ m.user_vectors[user])) for i in m.catalogue
        }
        knn = sorted((i for i in dots if i not in user_seen), key=lambda i: (-dots[i], i))[:k]
        terms = m.terms.get(user, [])
        score = {
            i: KNN_BOOST * float(max_inner_product_score(np.array(dots[i]))) + TERM_BOOST * bool(genres[i, terms].any())
            for i in knn
        }
        assert len(knn) == min(k, len(dots) - len(user_seen))
        expected = sorted(knn, key=lambda i: (-score[i], i))
        assert got.ids.tolist() == expected
        np.testing.assert_allclose(got.scores, [score[i] for i in expected], rtol=1e-6)
        assert got.scores.dtype == np.float32


def test_es_channel_term_bonus_reorders_but_does_not_add_items_outside_the_knn():
    # user vector (1, 0): the dot is the item's first coordinate
    items = np.array([[0, 0], [0.5, 0], [0.4, 0], [0.3, 0], [-0.5, 0], [2.0, 0]], dtype=np.float32)
    genres = np.zeros((6, N_GENRES), bool)
    genres[[2, 4], 7] = True  # items 2 and 4 match the user's term 7
    m = _moment(
        np.random.default_rng(0),
        catalogue=np.arange(1, 6),
        user_vectors=np.array([[0, 0], [1, 0]], np.float32),
        item_vectors=items,
        terms={1: [7]},
        seen={1: np.array([5])},
    )
    got = es_channel(m, 1, genres, k=3)
    # kNN top 3 of the unseen: 1 (0.5), 2 (0.4), 3 (0.3); 4 matches the term but is not in the kNN
    # hybrid: 2 -> 0.9 * 1.4 + 0.1 = 1.36 beats 1 -> 0.9 * 1.5 = 1.35
    assert got.ids.tolist() == [2, 1, 3]
    np.testing.assert_allclose(got.scores, [1.36, 1.35, 0.9 * 1.3], rtol=1e-6)


def test_user_channels_are_the_channel_functions_on_the_moments_tables():
    # EASE: item 1 votes 2 (0.5) and 3 (0.4); item 4 votes 3 (1.0) and 1 (0.2). Recent (latest first): 4, 1
    ease = (
        np.array([[0, 0], [2, 3], [0, 0], [0, 0], [3, 1]]),
        np.array([[0, 0], [0.5, 0.4], [0, 0], [0, 0], [1, 0.2]]),
    )
    seq = (np.array([[0, 0], [0, 0], [0, 0], [0, 0], [2, 0]]), np.array([[0, 0], [0, 0], [0, 0], [0, 0], [0.7, 0]]))
    m = _moment(
        np.random.default_rng(0),
        n_items=5,
        recent={1: np.array([4, 1])},
        seen={1: np.array([1, 4])},
        neighbours={EASE: ease, SEQ: seq},
        popular=(np.array([4, 2, 3]), np.array([0.5, 0.3, 0.2], np.float32)),
    )
    genres = np.zeros((5, N_GENRES), bool)
    lists = user_channels(m, 1, genres)
    assert set(lists) == {ES, EASE, SEQ, POPULAR}
    # 3: 1.0 + 0.9 * 0.4 = 1.36; 2: 0.9 * 0.5 = 0.45; 1 is seen
    assert lists[EASE].ids.tolist() == [3, 2]
    np.testing.assert_allclose(lists[EASE].scores, [1.36, 0.45], rtol=1e-6)
    assert lists[SEQ].ids.tolist() == [2] and lists[SEQ].scores[0] == pytest.approx(0.7)
    assert lists[POPULAR].ids.tolist() == [2, 3]  # 4 is seen
    assert lists[ES].ids.tolist() == es_channel(m, 1, genres).ids.tolist() and set(lists[ES].ids) == {2, 3}
    # a user the moment has never seen: no item-to-item candidates, the whole popularity list
    cold = user_channels(m, 2, genres)
    assert len(cold[EASE].ids) == len(cold[SEQ].ids) == 0 and cold[POPULAR].ids.tolist() == [4, 2, 3]


# -- the training moments -------------------------------------------------------------------------
def _brute_moments(offline: pd.DataFrame, last_n: int = 10):
    """Per user, time-ordered (stable): train events [:-20], train labels [-20:-10],
    val events [:-10], val labels [-10:]."""
    parts: dict[str, list[pd.DataFrame]] = {"train_events": [], "train_labels": [], "val_events": [], "val_labels": []}
    for _, grp in offline.groupby(USERID, sort=True):
        grp = grp.sort_values(TS, kind="stable")
        n = len(grp)
        parts["train_events"].append(grp.iloc[: max(n - 2 * last_n, 0)])
        parts["train_labels"].append(grp.iloc[max(n - 2 * last_n, 0) : max(n - last_n, 0)])
        parts["val_events"].append(grp.iloc[: max(n - last_n, 0)])
        parts["val_labels"].append(grp.iloc[max(n - last_n, 0) :])
    return {k: pd.concat(v).reset_index(drop=True) for k, v in parts.items()}


def test_training_moments_label_each_users_events_minus_20_to_minus_11_then_the_last_10():
    rng = np.random.default_rng(0)
    rows = []
    for user, n in ((1, 35), (2, 20), (3, 15), (4, 4)):  # fewer than 20 or 10 events: the labels take what there is
        ts = np.sort(rng.integers(0, 12, n))  # coarse timestamps: ties keep file order
        rows += [(user, int(rng.integers(1, 100)), int(rng.integers(0, 2)), int(t)) for t in ts]
    offline = _frame(rows, (USERID, ITEMID, LABEL, TS)).sample(frac=1.0, random_state=1)  # any row order
    (train_events, train_labels), (val_events, val_labels) = training_moments(offline)
    ref = _brute_moments(offline)
    for got, name in (
        (train_events, "train_events"),
        (train_labels, "train_labels"),
        (val_events, "val_events"),
        (val_labels, "val_labels"),
    ):
        pd.testing.assert_frame_equal(got.reset_index(drop=True), ref[name], check_dtype=False, obj=name)
    assert train_labels.groupby(USERID).size().to_dict() == {1: 10, 2: 10, 3: 5}
    assert val_labels.groupby(USERID).size().to_dict() == {1: 10, 2: 10, 3: 10, 4: 4}
    assert len(train_events) == 15 and (train_events[USERID] == 1).all()


# -- no leakage: a small synthetic world ----------------------------------------------------------
N_USERS, N_ITEMS = 31, 61  # ids 1..30, 1..60
ALS = {"factors": 4, "regularization": 0.1, "alpha": 5.0, "iterations": 4}
ALL_ITEMS = np.arange(1, N_ITEMS, dtype=np.int64)
WIDE = CandidateConfig(max_negatives=10_000, random_negatives=0)  # every candidate kept: rows depend on users only


def _world(seed: int = 0):
    """(events with ts, genres, users): users pick from two taste clusters over ~80 days."""
    rng = np.random.default_rng(seed)
    genres = np.zeros((N_ITEMS, N_GENRES), bool)
    genres[1:, 1:] = rng.random((N_ITEMS - 1, N_GENRES - 1)) < 0.15
    genres[1:31, 1] = genres[31:, 8] = True
    rows = []
    for user in range(1, N_USERS):
        taste = ALL_ITEMS[:30] if user % 2 else ALL_ITEMS[30:]
        n = int(rng.integers(25, 40))
        items = np.concatenate([rng.choice(taste, n - n // 4, replace=False), rng.choice(ALL_ITEMS, n, replace=False)])
        items = pd.unique(items)[:n]
        ts = int(rng.integers(0, 40) * DAY_S) + np.cumsum(rng.integers(600, 2 * int(DAY_S), len(items)))
        ratings = np.where(np.isin(items, taste), rng.integers(3, 6, len(items)), rng.integers(1, 5, len(items)))
        rows += [(user, int(i), int(r > 3), int(t)) for i, r, t in zip(items, ratings, ts, strict=True)]
    events = _frame(rows, (USERID, ITEMID, LABEL, TS))
    users = pd.DataFrame(
        {
            USERID: np.arange(1, N_USERS),
            GENDER: rng.choice(["M", "F"], N_USERS - 1),
            AGE: rng.choice([1, 18, 25, 35, 45, 50, 56], N_USERS - 1),
            OCCUPATION: rng.integers(0, 21, N_USERS - 1),
        }
    )
    return ordered(events), genres, users


@pytest.fixture(scope="module")
def world():
    return _world()


def _fit(events, genres) -> Moment:
    return fit_moment(events, genres, N_USERS, N_ITEMS, ALL_ITEMS, ALS)


def _raw_features(m: Moment, examples: pd.DataFrame) -> pd.DataFrame:
    """Every raw (unscaled) feature of every example, keyed by (user, item): the request features and
    the moment's user and item tables looked up by id."""
    uid, iid = examples[USERID].to_numpy(), examples[ITEMID].to_numpy()
    out = examples[[USERID, ITEMID, RECALL_POS, *REQUEST_FEATURES]].copy()
    for name, values in m.user_dense.items():
        out[name] = values[uid]
    for name, values in m.item_dense.items():
        out[name] = values[iid]
    return out.set_index([USERID, ITEMID]).sort_index()


def _assert_same_moment(a: Moment, b: Moment) -> None:
    for f in dataclasses.fields(Moment):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y)
        elif isinstance(x, dict):
            assert x.keys() == y.keys(), f.name
            for key in x:
                np.testing.assert_array_equal(np.asarray(x[key]), np.asarray(y[key]), err_msg=f"{f.name}[{key}]")
        else:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f.name)


def _assert_same_channels(a: Moment, b: Moment, users, genres) -> None:
    for user in users:
        la, lb = user_channels(a, user, genres), user_channels(b, user, genres)
        for channel in la:
            np.testing.assert_array_equal(la[channel].ids, lb[channel].ids, err_msg=f"{user} {channel}")
            np.testing.assert_array_equal(la[channel].scores, lb[channel].scores, err_msg=f"{user} {channel}")
        ua, ub = union(la), union(lb)
        np.testing.assert_array_equal(ua.ids, ub.ids)
        np.testing.assert_array_equal(ua.features, ub.features)


def _later_events(events: pd.DataFrame, cutoff: int, rng) -> pd.DataFrame:
    """Events after ``cutoff`` for users who have some: other items (incl. their own earlier ones), later times."""
    users = events.loc[events[TS] > cutoff, USERID].unique()
    rows = [
        (int(u), int(i), int(rng.integers(0, 2)), cutoff + int(rng.integers(1, 30 * DAY_S)))
        for u in users
        for i in rng.choice(ALL_ITEMS, 6, replace=False)
    ]
    return _frame(rows, (USERID, ITEMID, LABEL, TS))


def test_events_after_the_moment_change_no_feature_of_any_example(world):
    """Moment = every event up to ``cutoff``; labels = the events after it. Adding later events (other
    items, same users) and flipping the later events' labels changes labels only, never a feature."""
    events, genres, _ = world
    cutoff = int(np.quantile(events[TS], 0.7))
    before, after = events[events[TS] <= cutoff], events[events[TS] > cutoff]
    rng = np.random.default_rng(5)
    changed_after = after.copy()
    changed_after[LABEL] = np.where(rng.random(len(after)) < 0.5, 1 - after[LABEL], after[LABEL])
    changed_after = pd.concat([changed_after, _later_events(events, cutoff, rng)], ignore_index=True)
    # what the pipeline hands fit_moment is "every event up to the moment", from whichever frame
    changed = pd.concat([before, changed_after], ignore_index=True).sample(frac=1.0, random_state=2)

    m = _fit(before, genres)
    m2 = _fit(changed[changed[TS] <= cutoff], genres)
    _assert_same_moment(m, m2)
    labelled_users = sorted(set(after[USERID]) & set(before[USERID]))
    _assert_same_channels(m, m2, labelled_users, genres)

    for cfg in (WIDE, CandidateConfig()):
        base = moment_examples(m, after, genres, cfg, TRAIN_MOMENT)
        other = moment_examples(m2, changed_after, genres, cfg, TRAIN_MOMENT)
        a, b = _raw_features(m, base), _raw_features(m2, other)
        common = a.index.intersection(b.index)
        assert len(common) >= 0.5 * len(a)
        pd.testing.assert_frame_equal(a.loc[common], b.loc[common])
        assert not (base[LABEL].sum() == other[LABEL].sum() and set(a.index) == set(b.index))  # labels did change
    # every candidate kept: the same users have the same rows, whatever the labels say
    base, other = (
        moment_examples(mm, lab, genres, WIDE, TRAIN_MOMENT) for mm, lab in ((m, after), (m2, changed_after))
    )
    users = sorted(set(base[USERID]) & set(other[USERID]))
    base, other = (df[df[USERID].isin(users)].drop(columns=[LABEL]).reset_index(drop=True) for df in (base, other))
    pd.testing.assert_frame_equal(base, other)


def test_an_event_before_the_moment_does_change_the_features(world):
    """The other side of the leakage test: the comparison above is able to fail."""
    events, genres, _ = world
    cutoff = int(np.quantile(events[TS], 0.7))
    before, after = events[events[TS] <= cutoff], events[events[TS] > cutoff]
    altered = before.copy()
    first = altered.index[altered[USERID] == 1][-1]  # user 1's latest event before the moment
    altered.loc[first, ITEMID] = next(
        i for i in ALL_ITEMS[::-1] if i not in set(before.loc[before[USERID] == 1, ITEMID])
    )
    a = _raw_features(m := _fit(before, genres), moment_examples(m, after, genres, WIDE, TRAIN_MOMENT))
    b = _raw_features(m2 := _fit(altered, genres), moment_examples(m2, after, genres, WIDE, TRAIN_MOMENT))
    common = a.index.intersection(b.index)
    assert not a.loc[common].equals(b.loc[common]) or set(a.index) != set(b.index)
    assert not np.array_equal(m.item_dense[ITEM_POP], m2.item_dense[ITEM_POP])
    assert m.recent[1][0] != m2.recent[1][0]


def _pipeline_matrix(offline: pd.DataFrame, genres: np.ndarray, users: pd.DataFrame, cfg=WIDE):
    """What ``pipeline.run_features`` builds from the offline events: (moments, meta, matrix)."""
    moments, frames = {}, []
    for key, (events, labels) in zip((TRAIN_MOMENT, VAL_MOMENT), training_moments(offline), strict=True):
        moments[key] = _fit(events, genres)
        frames.append(moment_examples(moments[key], labels, genres, cfg, key))
    meta, matrix = build_rank_matrix(pd.concat(frames, ignore_index=True), moments, users, genres, N_USERS, N_ITEMS)
    return moments, meta, matrix


def _last_n_mask(offline: pd.DataFrame, lo: int, hi: int) -> np.ndarray:
    """Rows whose position from each user's end (1 = latest) is in ``lo..hi`` (``offline`` is time-ordered)."""
    from_end = offline.groupby(USERID).cumcount(ascending=False).to_numpy() + 1
    return (from_end >= lo) & (from_end <= hi)


@pytest.mark.parametrize("cfg", [WIDE, CandidateConfig()], ids=["every-candidate", "sampled"])
def test_the_train_moment_sees_nothing_of_the_last_20_events(world, cfg):
    """Rewriting each user's last 10 events (what the val moment labels) changes no train-moment row;
    flipping the labels of the 10 before them (the train moment's labels) changes labels, not features."""
    offline, genres, users = world
    moments, meta, matrix = _pipeline_matrix(offline, genres, users, cfg)
    rng = np.random.default_rng(9)

    last10 = offline.copy()
    rows = _last_n_mask(offline, 1, 10)
    last10.loc[rows, ITEMID] = rng.choice(ALL_ITEMS, int(rows.sum()))
    last10.loc[rows, LABEL] = 1 - last10.loc[rows, LABEL]
    moments2, meta2, matrix2 = _pipeline_matrix(last10, genres, users, cfg)
    _assert_same_moment(moments[TRAIN_MOMENT], moments2[TRAIN_MOMENT])
    assert meta2 == meta  # the meta (columns, scaling) is fit on the train moment alone
    train, train2 = (mx[mx[MOMENT] == TRAIN_MOMENT].reset_index(drop=True) for mx in (matrix, matrix2))
    pd.testing.assert_frame_equal(train, train2)
    assert (
        not matrix[matrix[MOMENT] == VAL_MOMENT]
        .reset_index(drop=True)
        .equals(matrix2[matrix2[MOMENT] == VAL_MOMENT].reset_index(drop=True))
    )

    flipped = offline.copy()
    rows = _last_n_mask(offline, 11, 20)
    flipped.loc[rows, LABEL] = 1 - flipped.loc[rows, LABEL]
    moments3, _, _ = _pipeline_matrix(flipped, genres, users, cfg)
    _assert_same_moment(moments[TRAIN_MOMENT], moments3[TRAIN_MOMENT])
    (_, labels), (_, labels3) = training_moments(offline)[0], training_moments(flipped)[0]
    a = _raw_features(moments[TRAIN_MOMENT], moment_examples(moments[TRAIN_MOMENT], labels, genres, cfg, TRAIN_MOMENT))
    b = _raw_features(
        moments3[TRAIN_MOMENT], moment_examples(moments3[TRAIN_MOMENT], labels3, genres, cfg, TRAIN_MOMENT)
    )
    common = a.index.intersection(b.index)
    assert len(common) >= 0.5 * len(a)
    pd.testing.assert_frame_equal(a.loc[common], b.loc[common])


def test_examples_label_exactly_the_positives_that_came_next(world):
    """Label 1 = the candidate is one of the user's positives among the events right after the moment."""
    offline, genres, _ = world
    for key, (events, labels) in zip((TRAIN_MOMENT, VAL_MOMENT), training_moments(offline), strict=True):
        m = _fit(events, genres)
        for cfg in (WIDE, CandidateConfig(max_negatives=5, random_negatives=3)):
            examples = moment_examples(m, labels, genres, cfg, key)
            assert (examples[MOMENT] == key).all()
            clicked = labels[labels[LABEL] == 1]
            positives = set(zip(clicked[USERID], clicked[ITEMID], strict=True))
            pairs = list(zip(examples[USERID], examples[ITEMID], strict=True))
            assert examples[LABEL].tolist() == [int(p in positives) for p in pairs]
            assert set(examples[USERID]) == {u for u, _ in positives} & set(events[USERID])
            assert not examples.duplicated([USERID, ITEMID]).any()
            for user, rows in examples.groupby(USERID):
                seen = set(m.seen[user].tolist())
                assert not seen & set(rows[ITEMID])  # nothing the user already did at the moment
                cands = union(user_channels(m, user, genres))
                in_union = rows[RECALL_POS] < len(cands.ids)
                np.testing.assert_array_equal(cands.ids[rows.loc[in_union, RECALL_POS]], rows.loc[in_union, ITEMID])
                np.testing.assert_array_equal(
                    cands.features[rows.loc[in_union, RECALL_POS]], rows.loc[in_union, list(REQUEST_FEATURES)]
                )
                if cfg is WIDE:  # every candidate kept, in recall order
                    assert rows[ITEMID].tolist() == cands.ids.tolist()
                else:
                    assert (~in_union).sum() <= cfg.random_negatives
                    assert (rows.loc[~in_union, LABEL] == 0).all()
                    assert (rows.loc[in_union, LABEL] == 0).sum() <= cfg.max_negatives


def test_the_ranks_of_a_channel_are_bounded_by_its_k(world):
    offline, genres, _ = world
    (events, labels), _ = training_moments(offline)
    m = _fit(events, genres)
    examples = moment_examples(m, labels, genres, WIDE, TRAIN_MOMENT)
    for channel, k in CHANNEL_K.items():
        ranks = np.expm1(examples[f"{channel}_rank"].to_numpy(np.float64))
        assert ranks.min() >= -1e-4 and ranks.max() <= k + 1 + 1e-3
    assert examples["n_channels"].between(1, 4).all()


@pytest.mark.parametrize("n_pos", [0, 3, 40])
def test_cap_negatives_keeps_every_positive_and_samples_negatives_to_the_budget(n_pos):
    rng = np.random.default_rng(7)
    labels = np.zeros(100, dtype=np.int8)
    labels[rng.choice(100, n_pos, replace=False)] = 1
    rows = cap_negatives(labels, 30, seed=[1, 2])
    assert np.all(np.diff(rows) > 0)  # sorted, no repeats
    assert set(np.flatnonzero(labels == 1)) <= set(rows)  # every positive stays
    assert len(rows) == max(30, n_pos)  # the budget, or all positives when they alone exceed it
    assert np.array_equal(rows, cap_negatives(labels, 30, seed=[1, 2]))  # seeded
    assert not np.array_equal(cap_negatives(labels, 30, seed=[1, 3]), rows) or n_pos >= 30


def test_cap_negatives_under_budget_keeps_every_row_and_rejects_a_zero_budget():
    labels = np.array([0, 1, 0, 0, 1])
    assert np.array_equal(cap_negatives(labels, 5, seed=0), np.arange(5))
    with pytest.raises(ValueError, match="max_rows"):
        cap_negatives(labels, 0, seed=0)
