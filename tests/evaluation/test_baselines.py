"""Baselines: the seen mask and top-k-unseen against a brute-force loop, and each baseline's lists."""

import numpy as np
import pandas as pd
import pytest

from mlrec.core.constants import ISTEST, ITEMID, LABEL, TS, USERID
from mlrec.core.paths import VECTOR_RECALL_SCRIPT
from mlrec.evaluation.baselines import (
    BASELINES,
    CLICKED,
    RATED,
    BaselineInputs,
    als,
    ease,
    grid,
    itemknn,
    mf_dot_product,
    most_popular,
    most_rated,
    seen_mask,
    top_k_unseen,
    user_items,
)
from mlrec.evaluation.errors import EvaluationError
from mlrec.evaluation.metrics import PAD
from mlrec.models.item_item import cosine_neighbours, ease_weights

NO_EVENTS = pd.DataFrame({USERID: [], ITEMID: [], LABEL: [], ISTEST: [], TS: []})
NO_VECTORS = np.zeros((0, 4), np.float32)


def baseline_inputs(userids, catalogue, seen, offline=NO_EVENTS, user_vectors=NO_VECTORS, item_vectors=NO_VECTORS):
    return BaselineInputs(np.asarray(userids), np.asarray(catalogue), seen, offline, user_vectors, item_vectors)


# -- hand-computed cases ---------------------------------------------------------------------------
def test_top_k_unseen_drops_seen_breaks_ties_by_id_and_pads_when_exhausted():
    catalogue = np.array([10, 20, 30, 40])
    seen = np.array([[False, True, False, False], [True, True, True, False]])
    scores = np.array([[1.0, 9.0, 1.0, 0.5], [5.0, 5.0, 5.0, 5.0]])
    out = top_k_unseen(lambda rows: scores[rows], seen, catalogue, 3, chunk=1)
    assert out.tolist() == [[10, 30, 40], [40, PAD, PAD]]


def test_seen_mask_maps_ids_to_catalogue_columns_and_ignores_unknown_items():
    mask = seen_mask({1: np.array([30, 99]), 2: np.array([10])}, np.array([1, 2, 3]), np.array([10, 20, 30]))
    assert mask.tolist() == [[False, False, True], [True, False, False], [False, False, False]]


def test_popular_lists_rank_by_train_clicks_only_and_skip_seen():
    offline = pd.DataFrame(
        {
            USERID: [1, 2, 3, 1, 2, 3, 4],
            ITEMID: [20, 20, 30, 30, 10, 10, 10],
            LABEL: [1, 1, 1, 1, 1, 1, 0],
            ISTEST: [0, 0, 0, 0, 1, 1, 0],  # item 10's clicks are all in test: not counted
        }
    )
    catalogue = np.array([10, 20, 30])
    seen = np.array([[False, True, False], [False, False, False]])
    out = most_popular(baseline_inputs([1, 2], catalogue, seen, offline), 3)
    # train clicks: 20 -> 2, 30 -> 2 (tie: lower id first), 10 -> 0
    assert out.tolist() == [[30, 10, PAD], [20, 30, 10]]


def test_most_rated_counts_every_offline_rating_train_and_test_by_hand():
    offline = pd.DataFrame(
        {
            USERID: [1, 2, 3, 1, 2, 3, 4],
            ITEMID: [20, 20, 30, 30, 10, 10, 10],
            LABEL: [0, 0, 0, 1, 1, 1, 0],  # dislikes count: a rating says the user picked the item
            ISTEST: [0, 0, 0, 0, 1, 1, 1],  # so do test events
        }
    )
    catalogue = np.array([10, 20, 30, 40])
    seen = np.array([[True, False, False, False], [False, False, False, False]])
    out = most_rated(baseline_inputs([1, 5], catalogue, seen, offline), 4)
    # ratings: 10 -> 3, 20 -> 2, 30 -> 2 (tie: lower id first), 40 -> 0
    assert out.tolist() == [[20, 30, 40, PAD], [10, 20, 30, 40]]


def test_user_items_rows_cover_every_event_user_and_the_ranked_ones_and_count_a_pair_once():
    offline = pd.DataFrame(
        {USERID: [7, 7, 7, 3, 3], ITEMID: [20, 20, 99, 10, 20], LABEL: [1, 1, 1, 0, 1], ISTEST: [0, 1, 0, 0, 0]}
    )
    inp = baseline_inputs([9, 3], [10, 20, 30], np.zeros((2, 3), bool), offline)
    rated = user_items(inp, RATED)
    # rows: users 3, 7 (events) and 9 (ranked, no event); item 99 is outside the catalogue
    assert rated.matrix.toarray().tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert rated.rows.tolist() == [2, 0]
    assert user_items(inp, CLICKED).matrix.toarray().tolist() == [[0, 1, 0], [0, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="interactions"):
        user_items(inp, "liked")


def test_grid_is_every_combination_first_axis_slowest():
    assert grid(a=(1, 2), b=("x", None)) == (
        {"a": 1, "b": "x"},
        {"a": 1, "b": None},
        {"a": 2, "b": "x"},
        {"a": 2, "b": None},
    )


def random_inputs(seed, users=12, items=15, userids=(1, 4, 7, 11)):
    """A random offline frame of ratings (about 40 % rated, half of them clicks) and the seen mask of ``userids``."""
    rng = np.random.default_rng(seed)
    rated = rng.random((users, items)) < 0.4
    u, i = np.nonzero(rated)
    offline = pd.DataFrame(
        {
            USERID: u,
            ITEMID: i + 100,
            LABEL: (rng.random(len(u)) < 0.5).astype(np.int8),
            ISTEST: np.zeros(len(u), np.int8),
            TS: np.arange(len(u)),
        }
    )
    catalogue = np.arange(100, 100 + items)
    userids = np.asarray(userids)
    seen = rated[userids]
    return baseline_inputs(userids, catalogue, seen, offline), rated.astype(np.float64)


@pytest.mark.parametrize("seed", [0, 1])
def test_ease_and_itemknn_lists_rank_the_brute_force_scores(seed):
    """Scores of user u: EASE ``x_u @ B``; ItemKNN the sum over u's items of their cosine to j among j's neighbours."""
    inp, x = random_inputs(seed)
    b = ease_weights(user_items(inp, RATED).matrix, 30.0)  # the weights themselves: tests/models/test_item_item
    brute_ease = np.array([[x[u] @ b[:, j] for j in range(x.shape[1])] for u in inp.userids])
    k = x.shape[1]
    expected = top_k_unseen(lambda rows: brute_ease[rows], inp.seen, inp.catalogue, k)
    np.testing.assert_array_equal(ease(inp, k, lam=30.0, interactions=RATED), expected)

    s = cosine_neighbours(user_items(inp, RATED).matrix, 3)
    brute_knn = np.array(
        [[sum(s[j, i] for i in range(x.shape[1]) if x[u, i]) for j in range(x.shape[1])] for u in inp.userids]
    )
    expected = top_k_unseen(lambda rows: brute_knn[rows], inp.seen, inp.catalogue, k)
    np.testing.assert_array_equal(itemknn(inp, k, neighbours=3, interactions=RATED), expected)


def test_clicked_interactions_ignore_dislikes():
    """With clicks only, a disliked item carries no signal: user 1's dislike of 10 does not lift 10's neighbour 20."""
    offline = pd.DataFrame(
        {USERID: [1, 2, 2, 3, 3], ITEMID: [10, 10, 20, 30, 40], LABEL: [0, 1, 1, 1, 1], ISTEST: [0] * 5}
    )
    catalogue = np.array([10, 20, 30, 40])
    inp = baseline_inputs([1], catalogue, np.array([[True, False, False, False]]), offline)
    assert itemknn(inp, 3, neighbours=None, interactions=RATED)[0, 0] == 20
    assert itemknn(inp, 3, neighbours=None, interactions=CLICKED)[0].tolist() == [20, 30, 40]  # all 0: id order
    assert ease(inp, 3, lam=1.0, interactions=RATED)[0, 0] == 20


def test_als_lists_have_the_shape_never_hold_seen_items_and_repeat_with_the_seed():
    inp, _ = random_inputs(0, users=30, items=20, userids=tuple(range(30)))
    out = als(inp, 8, factors=4, iterations=5)
    assert out.shape == (30, 8) and out.dtype == np.int64
    for row, seen in zip(out, inp.seen, strict=True):
        assert not set(row[row != PAD].tolist()) & set(inp.catalogue[seen].tolist())
        assert len(set(row.tolist())) == len(row)
    np.testing.assert_array_equal(als(inp, 8, factors=4, iterations=5), out)
    assert not np.array_equal(als(inp, 8, factors=4, iterations=5, interactions=CLICKED), out)


def test_mf_lists_equal_brute_force_dot_product():
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(9, 4)).astype(np.float32)
    userids, catalogue = np.array([1, 3, 5]), np.arange(1, 9)
    seen = seen_mask({1: np.array([2, 4])}, userids, catalogue)
    out = mf_dot_product(baseline_inputs(userids, catalogue, seen, user_vectors=users, item_vectors=items), 3)
    for row, u in zip(out, userids, strict=True):
        cand = [i for i in catalogue if not (u == 1 and i in (2, 4))]
        expected = sorted(cand, key=lambda i: -float(users[u].astype(np.float64) @ items[i].astype(np.float64)))[:3]
        assert row.tolist() == expected


def test_mf_vectors_shorter_than_the_ids_name_the_vector_recall_script():
    vectors = np.ones((3, 4), np.float32)
    inp = baseline_inputs([1, 5], [1, 2], np.zeros((2, 2), bool), user_vectors=vectors, item_vectors=vectors)
    with pytest.raises(EvaluationError, match="MF vectors cover 3 users / 3 items") as err:
        mf_dot_product(inp, 2)
    assert VECTOR_RECALL_SCRIPT in err.value.hint


def test_every_registered_baseline_has_a_unique_name_and_the_shared_signature():
    rng = np.random.default_rng(3)
    userids, catalogue = np.array([1, 2, 3]), np.array([2, 4, 6, 8])
    offline = pd.DataFrame({USERID: [1, 2, 3], ITEMID: [4, 4, 6], LABEL: [1, 1, 1], ISTEST: [0, 0, 0]})
    seen = seen_mask({1: np.array([4])}, userids, catalogue)
    vectors = rng.normal(size=(10, 4)).astype(np.float32)
    inp = baseline_inputs(userids, catalogue, seen, offline, vectors, vectors)
    # the report's method order
    assert [b.name for b in BASELINES] == ["mf", "popular", "popular_rated", "itemknn", "ease", "als"]
    for b in BASELINES:
        for params in b.grid or ({},):  # defaults and every grid point run
            out = b.build(inp, 3, **params)
            assert out.shape == (3, 3) and out.dtype == np.int64
            assert 4 not in out[0]  # user 1's seen item never comes back
            assert set(out[out != PAD].tolist()) <= set(catalogue.tolist())


def test_only_the_exported_mf_vectors_skip_validation():
    """They were trained on the validation events; every other baseline is fit per grid point, so it is validated."""
    assert [b.name for b in BASELINES if b.grid is None] == ["mf"]
    for b in BASELINES:
        assert b.grid is None or len(b.grid) >= 1


# -- the vectorized code against a brute-force loop --------------------------------------------------
def brute_seen_mask(seen, userids, catalogue):
    return np.array([[int(i) in set(seen.get(int(u), np.zeros(0)).tolist()) for i in catalogue] for u in userids])


def brute_top_k_unseen(scores, seen, catalogue, k):
    out = []
    for srow, mrow in zip(scores, seen, strict=True):
        cand = [(-s, int(i)) for s, i, m in zip(srow, catalogue, mrow, strict=True) if not m and np.isfinite(s)]
        best = [i for _, i in sorted(cand)[:k]]  # highest score first, ties by lower item id
        out.append(best + [PAD] * (k - len(best)))
    return np.array(out, dtype=np.int64).reshape(len(scores), k)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_seen_mask_and_top_k_unseen_match_a_brute_force_loop(seed):
    rng = np.random.default_rng(seed)
    catalogue = np.sort(rng.choice(np.arange(1, 40), size=12, replace=False))
    userids = np.arange(1, 10)
    # seen lists with ids outside the catalogue, empty lists, a user who saw everything, a user not in the dict
    seen = {int(u): rng.choice(np.arange(1, 45), size=rng.integers(0, 8), replace=False) for u in userids[:-2]}
    seen[int(userids[-2])] = catalogue.copy()
    mask = seen_mask(seen, userids, catalogue)
    np.testing.assert_array_equal(mask, brute_seen_mask(seen, userids, catalogue))
    scores = rng.integers(0, 4, size=(len(userids), len(catalogue))).astype(np.float64)  # many ties
    scores[rng.random(scores.shape) < 0.1] = -np.inf  # an item a method cannot score never makes a list
    for k in (1, 5, len(catalogue), len(catalogue) + 3):
        for chunk in (1, 4, 1024):
            out = top_k_unseen(lambda rows, s=scores: s[rows], mask, catalogue, k, chunk=chunk)
            np.testing.assert_array_equal(out, brute_top_k_unseen(scores, mask, catalogue, k))
