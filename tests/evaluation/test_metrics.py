"""Top-K metrics against hand-computed cases and a plain-loop reference."""

import math

import numpy as np
import pytest

from mlrec.evaluation.metrics import (
    PAD,
    MetricInputError,
    coverage,
    hit_matrix,
    hit_rate_at_k,
    ndcg_at_k,
    pad_lists,
    recall_at_k,
    recall_curve,
)


def scores_for(ranked, relevant):
    ranked = np.asarray(ranked)
    return hit_matrix(ranked, [np.asarray(r) for r in relevant]), np.array([len(r) for r in relevant])


# -- hand-computed cases -------------------------------------------------------------------------
def test_perfect_ranking_has_ndcg_recall_and_hit_rate_one():
    hits, n_rel = scores_for([[7, 3, 9, 1, 2]], [[3, 7, 9]])
    assert ndcg_at_k(hits, n_rel, 5)[0] == pytest.approx(1.0)
    assert recall_at_k(hits, n_rel, 5)[0] == 1.0
    assert hit_rate_at_k(hits, 5)[0] == 1.0


def test_ideal_dcg_is_over_min_relevant_and_k():
    # 3 relevant, K = 2, both top slots relevant: as good as possible at K = 2 -> NDCG 1, recall 2/3
    hits, n_rel = scores_for([[7, 3, 1]], [[3, 7, 9]])
    assert ndcg_at_k(hits, n_rel, 2)[0] == pytest.approx(1.0)
    assert recall_at_k(hits, n_rel, 2)[0] == pytest.approx(2 / 3)


def test_no_hit_scores_zero_everywhere():
    hits, n_rel = scores_for([[1, 2, 3], [PAD, PAD, PAD]], [[4, 5], [6]])
    for k in (1, 3):
        assert recall_at_k(hits, n_rel, k).tolist() == [0.0, 0.0]
        assert ndcg_at_k(hits, n_rel, k).tolist() == [0.0, 0.0]
        assert hit_rate_at_k(hits, k).tolist() == [0.0, 0.0]


def test_single_hit_at_rank_two_by_hand():
    hits, n_rel = scores_for([[10, 20, 30, 40]], [[20, 99]])
    assert recall_at_k(hits, n_rel, 1)[0] == 0.0
    assert recall_at_k(hits, n_rel, 4)[0] == 0.5
    assert hit_rate_at_k(hits, 1)[0] == 0.0 and hit_rate_at_k(hits, 2)[0] == 1.0
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))  # DCG one hit at rank 2 / IDCG two hits on top
    assert ndcg_at_k(hits, n_rel, 4)[0] == pytest.approx(expected)


def test_hits_are_per_user_not_across_users():
    # item 5 is relevant for user 0 only; recommending it to user 1 is not a hit
    hits, _ = scores_for([[5, 6], [5, 8]], [[5], [8]])
    assert hits.tolist() == [[True, False], [False, True]]


def test_padding_never_counts_and_short_lists_work_at_larger_k():
    hits, n_rel = scores_for([[3, PAD, PAD]], [[3, 4]])
    assert hits.tolist() == [[True, False, False]]
    assert recall_at_k(hits, n_rel, 10)[0] == 0.5  # K wider than the list: counts what is there


def test_repeated_item_in_a_list_is_rejected():
    with pytest.raises(MetricInputError, match="repeats an item"):
        hit_matrix(np.array([[1, 2, 1]]), [np.array([1])])


def test_user_without_relevant_items_is_rejected():
    hits, n_rel = scores_for([[1, 2]], [[]])
    with pytest.raises(MetricInputError, match="no relevant item"):
        recall_at_k(hits, n_rel, 2)
    with pytest.raises(MetricInputError, match="no relevant item"):
        ndcg_at_k(hits, n_rel, 2)


def test_bad_k_and_shape_are_rejected():
    with pytest.raises(MetricInputError, match="k=0"):
        hit_rate_at_k(np.zeros((1, 3), bool), 0)
    with pytest.raises(MetricInputError, match="one row per user"):
        hit_matrix(np.array([[1, 2]]), [np.array([1]), np.array([2])])


def test_more_hits_than_relevant_items_is_rejected():
    with pytest.raises(MetricInputError, match="more hits than relevant"):
        recall_at_k(np.array([[True, True, False]]), np.array([1]), 3)
    with pytest.raises(MetricInputError, match="n_relevant has shape"):
        ndcg_at_k(np.array([[True, False]]), np.array([1, 1]), 2)


def test_coverage_counts_distinct_items_in_top_k():
    ranked = np.array([[1, 2, 3], [2, 4, PAD]])
    assert coverage(ranked, 1, 10) == pytest.approx(2 / 10)  # {1, 2}
    assert coverage(ranked, 3, 10) == pytest.approx(4 / 10)  # {1, 2, 3, 4}; padding ignored
    with pytest.raises(MetricInputError):
        coverage(ranked, 3, 0)


def test_recall_curve_by_hand_and_matches_recall_at_k():
    hits, n_rel = scores_for([[1, 2, 3], [9, 8, 7]], [[2, 3], [9]])
    curve = recall_curve(hits, n_rel, 3)
    # user 0: 0, 0.5, 1; user 1: 1, 1, 1
    assert curve.tolist() == pytest.approx([0.5, 0.75, 1.0])
    assert curve[1] == pytest.approx(recall_at_k(hits, n_rel, 2).mean())


def test_pad_lists_cuts_and_pads():
    out = pad_lists([[1, 2, 3], [], [4]], 2)
    assert out.tolist() == [[1, 2], [PAD, PAD], [4, PAD]]
    assert out.dtype == np.int64


# -- the vectorized code against a plain-loop reference --------------------------------------------
def loop_reference(ranked, relevant, k):
    recall, ndcg, hr = [], [], []
    for row, rel in zip(ranked, relevant, strict=True):
        rel = set(rel.tolist())
        top = [i for i in row[:k] if i != PAD]
        gains = [1.0 if i in rel else 0.0 for i in top]
        dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(rel), k)))
        recall.append(sum(gains) / len(rel))
        ndcg.append(dcg / idcg)
        hr.append(float(sum(gains) > 0))
    return np.array(recall), np.array(ndcg), np.array(hr)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_metrics_match_loop_reference(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, width = 200, 60, 25
    ranked = np.stack([rng.permutation(n_items)[:width] + 1 for _ in range(n_users)])
    ranked[rng.random(ranked.shape) < 0.05] = PAD  # some padding, as in short lists
    ranked = pad_lists([r[r != PAD] for r in ranked], width)
    relevant = [rng.choice(np.arange(1, n_items + 1), size=rng.integers(1, 11), replace=False) for _ in range(n_users)]
    hits = hit_matrix(ranked, relevant)
    n_rel = np.array([len(r) for r in relevant])
    for k in (1, 5, 10, 25):
        recall, ndcg, hr = loop_reference(ranked, relevant, k)
        np.testing.assert_allclose(recall_at_k(hits, n_rel, k), recall)
        np.testing.assert_allclose(ndcg_at_k(hits, n_rel, k), ndcg)
        np.testing.assert_allclose(hit_rate_at_k(hits, k), hr)
