"""Top-K metrics against hand-computed cases and a loop reference; the baselines' list building."""

import math

import numpy as np
import pandas as pd
import pytest

from mlrec.core.constants import ISTEST, ITEMID, LABEL, USERID
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
from mlrec.evaluation.quality import (
    HeldOut,
    held_out_positives,
    mf_lists,
    popular_lists,
    same_sets,
    score_lists,
    seen_mask,
    served_within,
    stage_bodies,
    top_k_unseen,
)
from mlrec.online.redis_store import UserRecall


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
    for row, rel in zip(ranked, relevant):
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


# -- held-out positives ------------------------------------------------------------------------------
def test_held_out_positives_groups_by_user_and_counts_skipped():
    online = pd.DataFrame({USERID: [1, 1, 1, 2, 2, 3], ITEMID: [10, 11, 12, 20, 21, 30], LABEL: [1, 0, 1, 0, 0, 1]})
    held = held_out_positives(online)
    assert held.userids.tolist() == [1, 3]
    assert [r.tolist() for r in held.relevant] == [[10, 12], [30]]
    assert held.n_relevant.tolist() == [2, 1]
    assert (held.users_total, held.users_skipped) == (3, 1)


# -- baselines -----------------------------------------------------------------------------------------
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
    out = popular_lists(offline, catalogue, seen, 3)
    # train clicks: 20 -> 2, 30 -> 2 (tie: lower id first), 10 -> 0
    assert out.tolist() == [[30, 10, PAD], [20, 30, 10]]


def test_mf_lists_equal_brute_force_dot_product():
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(9, 4)).astype(np.float32)
    userids, catalogue = np.array([1, 3, 5]), np.arange(1, 9)
    seen = seen_mask({1: np.array([2, 4])}, userids, catalogue)
    out = mf_lists(users, items, userids, catalogue, seen, 3)
    for row, u in zip(out, userids):
        cand = [i for i in catalogue if not (u == 1 and i in (2, 4))]
        expected = sorted(cand, key=lambda i: -float(users[u].astype(np.float64) @ items[i].astype(np.float64)))[:3]
        assert row.tolist() == expected


# -- recall stages -----------------------------------------------------------------------------------
def test_stage_bodies_split_the_served_hybrid_body():
    user = UserRecall(1, [3, 5], np.ones(16, np.float32), np.array([7, 8], np.int32))
    bodies = stage_bodies(user, 200)
    assert set(bodies["hybrid"]) >= {"knn", "query"}
    assert "knn" not in bodies["term"] and bodies["term"]["query"] == bodies["hybrid"]["query"]
    assert "query" not in bodies["vector"] and bodies["vector"]["knn"] == bodies["hybrid"]["knn"]
    assert bodies["vector"]["size"] == bodies["term"]["size"] == 200
    no_terms = stage_bodies(UserRecall(2, [], np.ones(16, np.float32), np.array([], np.int32)), 200)
    assert no_terms["term"] is None


def test_served_within_and_same_sets():
    served = np.array([[1, 2], [3, PAD]])
    candidates = np.array([[2, 1, 9], [4, 5, 6]])
    assert served_within(served, candidates) == pytest.approx(2 / 3)
    assert same_sets(np.array([[1, 2], [3, 4]]), np.array([[2, 1], [3, 5]])) == 0.5


def test_score_lists_reports_only_the_ks_a_list_can_answer():
    held = HeldOut(np.array([1, 2]), [np.array([5]), np.array([6, 7])], np.array([1, 2]), 3, 1)
    ranked = np.array([[5, 1, 2], [9, 6, 7]])
    m = score_lists("x", "x", "test", ranked, held, catalogue_size=10, ks=(2, 3, 200), curve_k=3)
    assert set(m.metrics) == {f"{name}@{k}" for k in (2, 3) for name in ("hit_rate", "recall", "ndcg", "coverage")}
    assert m.metrics["recall@2"] == pytest.approx((1.0 + 0.5) / 2)
    assert m.metrics["coverage@3"] == pytest.approx(6 / 10)
    assert m.curve == pytest.approx([0.5, 0.75, 1.0])


# -- the report ----------------------------------------------------------------------------------------
def test_report_table_json_and_png_carry_dataset_and_protocol(tmp_path):
    import json

    from mlrec.evaluation.quality import QualityReport, protocol, protocol_line
    from mlrec.evaluation.report import format_table, output_paths, plot_recall_curves, write_json

    held = HeldOut(np.array([1, 2]), [np.array([5]), np.array([6, 7])], np.array([1, 2]), 2, 0)
    ranked = np.array([[5, 1, 2], [9, 6, 7]])
    methods = [
        score_lists(n, n, "test", ranked, held, catalogue_size=10, ks=(2, 3), curve_k=3)
        for n in ("system", "recall_order", "vector_recall", "term_recall", "mf", "popular")
    ]
    report = QualityReport(
        dataset="toy",
        url="http://x",
        protocol=protocol(10),
        protocol_line=protocol_line(10),
        users=dict(total=2, evaluated=2, skipped_no_positive=0, held_out_positives=3, served_fallback=0),
        methods=methods,
        stages={
            "candidate_recall@200": {"term": 0.1, "vector": 0.2, "hybrid": 0.2},
            "ranker_lift": {"ndcg@3_lift": 0.0},
        },
        timing={},
        config=dict(k=3),
    )
    json_path, png_path = output_paths(tmp_path, report.dataset)
    write_json(report, json_path)
    plot_recall_curves(report, png_path)
    data = json.loads(json_path.read_text())
    assert data["dataset"] == "toy"
    assert data["methods"]["system"]["metrics"]["recall@3"] == pytest.approx(1.0)
    assert data["methods"]["popular"]["protocol"] == protocol_line(10)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = format_table(report)
    assert protocol_line(10) in table and "quality on toy" in table
