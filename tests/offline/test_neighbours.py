"""The item-to-item channels' neighbour tables (mlrec.offline.neighbours) against brute-force loops."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from mlrec.core.constants import ITEMID, USERID
from mlrec.models.item_item import ease_weights
from mlrec.offline.neighbours import SEQ_LAGS, SEQ_SHRINK, ease_neighbours, top_neighbours, transition_neighbours


def _brute_top(weights: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the other items with a positive weight, best first (ties: lower id), cut at n, padded with 0."""
    n_items = weights.shape[0]
    n = min(n, weights.shape[1])
    ids, out = np.zeros((n_items, n), np.int32), np.zeros((n_items, n), np.float32)
    for i in range(n_items):
        pairs = sorted(
            ((-float(weights[i, j]), j) for j in range(weights.shape[1]) if j != i and weights[i, j] > 0),
        )[:n]
        for pos, (neg_w, j) in enumerate(pairs):
            ids[i, pos], out[i, pos] = j, -neg_w
    return ids, out


def _distinct_weights(rng, n_items: int) -> np.ndarray:
    """Random weights with no two equal in a row (so "the n largest" is unambiguous), some negative;
    column 0 (the padding id, never an item) is 0."""
    w = rng.permutation(n_items * n_items).reshape(n_items, n_items) / (n_items * n_items) - 0.3
    w[:, 0] = 0.0
    return w


@pytest.mark.parametrize("n", [1, 3, 8, 12, 50])
def test_top_neighbours_matches_brute_force(n):
    w = _distinct_weights(np.random.default_rng(n), 12)
    ids, weights = top_neighbours(w, n)
    ref_ids, ref_weights = _brute_top(w, n)
    assert ids.dtype == np.int32 and weights.dtype == np.float32
    assert ids.shape == (12, min(n, 12))
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(weights, ref_weights)


def test_top_neighbours_hand_computed():
    w = np.array(
        [
            [0.0, 0.0, 0.0, 0.0],  # item 0: padding row
            [0.0, 9.0, 0.5, -1.0],  # the diagonal (9) is not a neighbour, the negative is dropped
            [0.0, 0.2, 0.0, 0.2],  # a tie inside the kept list: lower id first
            [0.0, -0.1, -0.2, 0.0],  # nothing positive: all padding
        ]
    )
    ids, weights = top_neighbours(w, 3)
    assert ids.tolist() == [[0, 0, 0], [2, 0, 0], [1, 3, 0], [0, 0, 0]]
    np.testing.assert_allclose(weights, [[0, 0, 0], [0.5, 0, 0], [0.2, 0.2, 0], [0, 0, 0]])
    ids, weights = top_neighbours(w, 2)  # argpartition path (n < items)
    assert ids.tolist() == [[0, 0], [2, 0], [1, 3], [0, 0]]


@pytest.mark.parametrize("n", [29, 30])  # 29: the argpartition path, 30: the whole row
def test_top_neighbours_ties_inside_the_kept_list_go_to_the_lower_id(n):
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, (30, 30)).astype(np.float64)  # coarse: ties everywhere
    w[:, 0] = 0.0
    # the diagonal is a zero of every row, so n >= 29 keeps every positive weight: the order alone is checked
    ids, weights = top_neighbours(w, n)
    ref_ids, ref_weights = _brute_top(w, n)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(weights, ref_weights)


def test_top_neighbours_ties_at_the_cut_go_to_the_lower_id():
    rng = np.random.default_rng(0)
    w = rng.integers(0, 3, (50, 50)).astype(np.float64)
    w[:, 0] = 0.0
    ids, _ = top_neighbours(w, 5)
    ref_ids, _ = _brute_top(w, 5)
    np.testing.assert_array_equal(ids, ref_ids)


def _brute_transitions(events: pd.DataFrame, n_items: int, lags: int, shrink: float) -> np.ndarray:
    """t[i, j] = sum over a user's time-ordered events of 1/lag for j following i within ``lags``,
    each row divided by (its total + shrink)."""
    t = np.zeros((n_items, n_items))
    for _, grp in events.groupby(USERID, sort=False):
        items = grp[ITEMID].tolist()
        for a in range(len(items)):
            for lag in range(1, lags + 1):
                if a + lag < len(items):
                    t[items[a], items[a + lag]] += 1.0 / lag
    for i in range(n_items):
        t[i] /= t[i].sum() + shrink
    return t


def _sequences(rng, n_users: int, n_items: int) -> pd.DataFrame:
    rows = []
    for u in range(1, n_users + 1):
        length = int(rng.integers(1, 15))  # includes users with a single event (no transition)
        start = int(rng.integers(1, n_items))
        for k in range(length):  # a drift through the catalogue, so transitions repeat across users
            rows.append((u, 1 + (start + k * int(rng.integers(1, 3)) - 1) % (n_items - 1)))
    return pd.DataFrame(rows, columns=[USERID, ITEMID])


def test_transitions_hand_computed():
    # user 1: 1 -> 2 -> 3; user 2: 3 -> 1. Lags 1 and 2 (weight 1 and 1/2); no pair crosses users
    events = pd.DataFrame({USERID: [1, 1, 1, 2, 2], ITEMID: [1, 2, 3, 3, 1]})
    ids, weights = transition_neighbours(events, n_items=4, n=3, lags=2, shrink=1.0)
    # row 1: 2 (1.0), 3 (0.5); total 1.5 + shrink 1 -> 0.4, 0.2
    assert ids[1].tolist() == [2, 3, 0]
    np.testing.assert_allclose(weights[1], [0.4, 0.2, 0.0], rtol=1e-6)
    assert ids[2].tolist() == [3, 0, 0] and weights[2][0] == pytest.approx(0.5)
    assert ids[3].tolist() == [1, 0, 0] and weights[3][0] == pytest.approx(0.5)  # user 2's 3 -> 1 only
    assert ids[0].tolist() == [0, 0, 0]


@pytest.mark.parametrize("seed", [0, 1])
def test_transition_neighbours_match_a_python_loop(seed):
    rng = np.random.default_rng(seed)
    n_items = 25
    events = _sequences(rng, 20, n_items)
    t = _brute_transitions(events, n_items, SEQ_LAGS, SEQ_SHRINK)
    n = int((t > 0).sum(axis=1).max())  # the longest row: no cut, so ties cannot straddle one
    assert n < n_items  # ... and the argpartition path runs
    ids, weights = transition_neighbours(events, n_items, n=n)
    ref_ids, ref_weights = _brute_top(t, n)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(weights, ref_weights, rtol=1e-6)
    assert (ids > 0).any()


def test_transition_shrink_and_lags_are_applied():
    events = pd.DataFrame({USERID: [1] * 4, ITEMID: [1, 2, 3, 4]})
    t = _brute_transitions(events, 5, lags=3, shrink=2.0)
    ids, weights = transition_neighbours(events, 5, n=5, lags=3, shrink=2.0)
    # row 1: 2 (1), 3 (1/2), 4 (1/3); total 11/6 + 2 = 23/6
    np.testing.assert_allclose(weights[1][:3], np.array([1, 1 / 2, 1 / 3]) * 6 / 23, rtol=1e-6)
    np.testing.assert_allclose(weights[1][:3], t[1, 2:5], rtol=1e-6)
    assert ids[1].tolist()[:3] == [2, 3, 4] and ids[4].tolist() == [0] * 5


@pytest.mark.parametrize("seed", [0, 1])
def test_ease_neighbours_rows_are_the_top_of_the_ease_weights(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 20
    dense = (rng.random((n_users, n_items)) < 0.25).astype(np.float32)
    dense[:, 0] = 0.0  # item 0 is the padding id: nobody interacts with it
    x = scipy.sparse.csr_matrix(dense)
    b = ease_weights(x, 5.0)
    for n in (3, 10):
        ids, weights = ease_neighbours(x, lam=5.0, n=n)
        ref_ids, ref_weights = _brute_top(b, n)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(weights, ref_weights, rtol=1e-6)
    # a row's neighbours are what the item predicts: B[i, j] > 0 votes for j when i was seen
    assert all(b[i, j] > 0 for i in range(n_items) for j in ids[i] if j)


def _random_events(rng: np.random.Generator, n_users: int = 60, n_items: int = 80) -> pd.DataFrame:
    counts = rng.integers(5, 40, n_users)
    return pd.DataFrame(
        {
            USERID: np.repeat(np.arange(1, n_users + 1), counts),
            ITEMID: rng.integers(1, n_items, counts.sum()),
        }
    )


def _same_lists(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    """Equal weights (float tolerance), and equal ids wherever a weight is not tied within its row."""
    (gi, gw), (wi, ww) = got, want
    np.testing.assert_allclose(gw, ww, rtol=1e-6, atol=1e-9)
    for row in range(len(ww)):
        for k, w in enumerate(ww[row]):
            if w > 0 and np.sum(np.isclose(ww[row], w, rtol=1e-6)) == 1:
                assert gi[row, k] == wi[row, k], (row, k)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_transitions_equal_the_dense_ones(seed):
    """Above DENSE_MAX_ITEMS the transitions never become a dense matrix; the lists must not change."""
    events = _random_events(np.random.default_rng(seed))
    dense = transition_neighbours(events, 80, n=7)
    sparse = transition_neighbours(events, 80, n=7, dense_max_items=0)
    _same_lists(sparse, dense)
    assert sparse[0].dtype == np.int32 and sparse[1].dtype == np.float32


def test_ease_on_the_most_interacted_items_only_above_its_cap():
    rng = np.random.default_rng(4)
    events = _random_events(rng, n_users=120, n_items=50)
    x = scipy.sparse.csr_matrix((np.ones(len(events)), (events[USERID], events[ITEMID])), shape=(121, 50))
    x.data[:] = 1.0
    full = ease_neighbours(x, n=5)
    assert all(np.array_equal(a, b) for a, b in zip(ease_neighbours(x, n=5, max_items=50), full, strict=True))
    ids, weights = ease_neighbours(x, n=5, max_items=20)
    kept = np.sort(np.argsort(-x.getnnz(axis=0), kind="stable")[:20])
    others = np.setdiff1d(np.arange(50), kept)
    assert not ids[others].any() and not weights[others].any()  # outside the cap: no list
    assert np.isin(ids[weights > 0], kept).all()  # and never a neighbour
    sub_ids, sub_weights = ease_neighbours(x[:, kept].tocsr(), n=5)
    np.testing.assert_array_equal(weights[kept], sub_weights)
    np.testing.assert_array_equal(ids[kept], np.where(sub_weights > 0, kept[sub_ids], 0))
