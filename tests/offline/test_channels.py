"""The recall channels' shared logic (mlrec.offline.channels) against brute-force references.

The server and the offline training set both call these functions, so their exact output (order,
tie rule, request feature values) is the train/serve contract: each is checked here element by
element against a plain Python loop written from the docstrings.
"""

from collections import defaultdict
from fractions import Fraction

import numpy as np
import pytest

from mlrec.offline.channels import (
    CHANNEL_K,
    CHANNELS,
    EASE,
    ES,
    POPULAR,
    REQUEST_FEATURES,
    RRF_K,
    SEQ,
    Candidates,
    ChannelList,
    absent_features,
    neighbour_scores,
    recency_weights,
    top_unseen,
    union,
)


# -- neighbour_scores ---------------------------------------------------------------------------
def _brute_neighbour_scores(nb_ids, nb_weights, decay):
    acc: dict[int, float] = defaultdict(float)
    for r, (ids, weights) in enumerate(zip(nb_ids, nb_weights, strict=True)):
        for i, w in zip(ids, weights, strict=True):
            if i != 0:
                acc[int(i)] += decay**r * float(w)
    ids = sorted(acc)
    return np.array(ids, dtype=np.int64), np.array([acc[i] for i in ids])


def test_recency_weights_decay_from_the_most_recent_item():
    np.testing.assert_allclose(recency_weights(4, 0.5), [1.0, 0.5, 0.25, 0.125])
    assert recency_weights(0).shape == (0,)


@pytest.mark.parametrize("decay", [0.9, 0.5, 1.0])
def test_neighbour_scores_match_a_python_loop(decay):
    # three recent items (row 0 = most recent); id 0 pads short rows; item 7 is voted for by all three
    nb_ids = np.array([[7, 3, 0, 0], [5, 7, 9, 0], [7, 2, 3, 5]], dtype=np.int32)
    nb_weights = np.array([[0.5, 0.25, 0.0, 0.0], [0.8, 0.1, 0.05, 0.0], [0.3, 0.2, 0.1, 0.01]], dtype=np.float32)
    ids, scores = neighbour_scores(nb_ids, nb_weights, decay)
    ref_ids, ref_scores = _brute_neighbour_scores(nb_ids, nb_weights, decay)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(ids, ref_ids)  # id order, padding dropped
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
    assert 0 not in ids
    # hand-computed for item 7: 0.5 + decay * 0.1 + decay**2 * 0.3
    assert scores[ids.tolist().index(7)] == pytest.approx(0.5 + decay * 0.1 + decay**2 * 0.3, rel=1e-6)


def test_neighbour_scores_random_tables_match_a_python_loop():
    rng = np.random.default_rng(3)
    for n_recent in (1, 2, 5, 20):
        nb_ids = rng.integers(0, 30, (n_recent, 8))  # many zeros (padding) and repeats across rows
        nb_weights = np.where(nb_ids > 0, rng.random((n_recent, 8)), 0.0).astype(np.float32)
        ids, scores = neighbour_scores(nb_ids, nb_weights)
        ref_ids, ref_scores = _brute_neighbour_scores(nb_ids, nb_weights, 0.9)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-5)


def test_neighbour_scores_of_no_recent_items_or_only_padding_are_empty():
    for nb_ids in (np.zeros((0, 5), np.int32), np.zeros(0, np.int64)):
        ids, scores = neighbour_scores(nb_ids, np.zeros(nb_ids.shape, np.float32))
        assert ids.shape == scores.shape == (0,) and ids.dtype == np.int64 and scores.dtype == np.float32
    ids, scores = neighbour_scores(np.zeros((2, 3), np.int32), np.zeros((2, 3), np.float32))
    assert len(ids) == len(scores) == 0


# -- top_unseen ---------------------------------------------------------------------------------
def _brute_top_unseen(ids, scores, seen, k):
    pairs = [(int(i), float(np.float32(s))) for i, s in zip(ids, scores, strict=True) if i > 0 and i not in set(seen)]
    pairs = [(i, s) for i, s in pairs if np.isfinite(s)]
    pairs.sort(key=lambda p: (-p[1], p[0]))
    return pairs[:k]


def test_top_unseen_orders_by_score_then_lower_id_and_filters_seen():
    ids = np.array([4, 9, 2, 7, 5, 0, 3])
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.9, 5.0, np.nan])
    got = top_unseen(ids, scores, seen=np.array([7]), k=10)
    # 0 is padding, 3 has no finite score, 7 is seen; 5 and 9 tie (lower id first), so do 2 and 4
    assert got.ids.tolist() == [5, 9, 2, 4]
    np.testing.assert_allclose(got.scores, [0.9, 0.9, 0.5, 0.5])
    assert got.ids.dtype == np.int64 and got.scores.dtype == np.float32
    assert top_unseen(ids, scores, seen=np.array([7]), k=3).ids.tolist() == [5, 9, 2]
    assert top_unseen(ids, scores, seen=np.array([2, 4, 5, 9]), k=3).ids.tolist() == [7]
    assert len(top_unseen(ids, scores, seen=np.array([2, 4, 5, 7, 9]), k=3).ids) == 0
    assert len(top_unseen(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), 5).ids) == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_unseen_matches_a_sort(seed):
    rng = np.random.default_rng(seed)
    ids = rng.permutation(60)[:40]
    scores = rng.integers(0, 6, 40).astype(np.float32) / 4  # coarse: many ties
    seen = rng.choice(60, 10, replace=False)
    for k in (1, 5, 25, 100):
        got = top_unseen(ids, scores, seen, k)
        assert list(zip(got.ids.tolist(), got.scores.tolist(), strict=True)) == _brute_top_unseen(ids, scores, seen, k)


# -- union and the request features -------------------------------------------------------------
def _brute_union(lists: dict[str, ChannelList]):
    """(ids in recall order, {id: request feature row}) by the definitions in the module docstring."""
    rrf: dict[int, Fraction] = defaultdict(Fraction)
    rows: dict[int, dict[str, float]] = {}
    for channel in CHANNELS:
        cl = lists.get(channel, ChannelList.empty())
        for rank, (i, s) in enumerate(zip(cl.ids.tolist(), cl.scores.tolist(), strict=True)):
            rrf[i] += Fraction(1, RRF_K + rank + 1)
            rows.setdefault(i, {})[channel] = (rank, s)
    order = sorted(rrf, key=lambda i: (-rrf[i], i))
    feats = {}
    for i in order:
        row = []
        for channel in CHANNELS:
            rank, score = rows[i].get(channel, (None, 0.0))
            row += [np.log1p(rank) if rank is not None else np.log1p(CHANNEL_K[channel] + 1), score]
        feats[i] = [*row, len(rows[i])]
    return order, feats


def _lists(**per_channel) -> dict[str, ChannelList]:
    return {
        c: ChannelList(np.array(ids, dtype=np.int64), np.array(scores, dtype=np.float32))
        for c, (ids, scores) in per_channel.items()
    }


def test_request_feature_names_are_rank_and_score_per_channel_then_n_channels():
    assert CHANNELS == (ES, EASE, SEQ, POPULAR)
    assert REQUEST_FEATURES == (
        "es_rank",
        "es_score",
        "ease_rank",
        "ease_score",
        "seq_rank",
        "seq_score",
        "popular_rank",
        "popular_score",
        "n_channels",
    )


def test_union_hand_computed():
    lists = _lists(es=([10, 20, 30], [3.0, 2.0, 1.0]), ease=([20, 40], [0.7, 0.6]), popular=([40], [0.05]))
    got = union(lists)
    assert isinstance(got, Candidates) and got.features.dtype == np.float32
    # rrf: 20 = 1/62 + 1/61, 40 = 1/62 + 1/61 (tie -> lower id 20 first), 10 = 1/61, 30 = 1/63
    assert got.ids.tolist() == [20, 40, 10, 30]
    absent = {c: np.log1p(CHANNEL_K[c] + 1) for c in CHANNELS}
    expected = {
        20: [np.log1p(1), 2.0, np.log1p(0), 0.7, absent[SEQ], 0.0, absent[POPULAR], 0.0, 2],
        40: [absent[ES], 0.0, np.log1p(1), 0.6, absent[SEQ], 0.0, np.log1p(0), 0.05, 2],
        10: [np.log1p(0), 3.0, absent[EASE], 0.0, absent[SEQ], 0.0, absent[POPULAR], 0.0, 1],
        30: [np.log1p(2), 1.0, absent[EASE], 0.0, absent[SEQ], 0.0, absent[POPULAR], 0.0, 1],
    }
    for row, i in zip(got.features, got.ids.tolist(), strict=True):
        np.testing.assert_allclose(row, expected[i], rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_union_matches_a_python_loop(seed):
    rng = np.random.default_rng(seed)
    lists = {}
    for channel in CHANNELS:
        n = int(rng.integers(0, 30))
        ids = rng.choice(np.arange(1, 80), n, replace=False)
        lists[channel] = ChannelList(ids.astype(np.int64), np.sort(rng.random(n))[::-1].astype(np.float32))
    if seed == 3:
        del lists[SEQ]  # a missing channel counts as an empty one
    got = union(lists)
    order, feats = _brute_union(lists)
    assert got.ids.tolist() == order
    assert got.features.shape == (len(order), len(REQUEST_FEATURES))
    np.testing.assert_allclose(got.features, np.array([feats[i] for i in order]), rtol=1e-6)


def test_union_of_nothing_is_empty():
    got = union({})
    assert got.ids.shape == (0,) and got.features.shape == (0, len(REQUEST_FEATURES))


def test_absent_features_are_the_unions_values_of_a_channel_that_did_not_propose_the_item():
    got = absent_features(3)
    assert got.shape == (3, len(REQUEST_FEATURES)) and got.dtype == np.float32
    for j, channel in enumerate(CHANNELS):
        np.testing.assert_allclose(got[:, 2 * j], np.log1p(CHANNEL_K[channel] + 1), rtol=1e-6)
        assert (got[:, 2 * j + 1] == 0).all()
    assert (got[:, -1] == 0).all()
    assert absent_features(0).shape == (0, len(REQUEST_FEATURES))
    # item 5 comes from es only: its other channels' columns equal absent_features'
    row = union(_lists(es=([5], [1.0]), ease=([6], [0.5]))).features[0]
    np.testing.assert_array_equal(row[2:8], absent_features(1)[0, 2:8])
