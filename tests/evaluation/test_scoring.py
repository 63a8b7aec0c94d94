"""Scoring: one MethodScore per list matrix, and the two consistency checks between lists."""

import numpy as np
import pytest

from mlrec.evaluation.heldout import HeldOut
from mlrec.evaluation.metrics import PAD
from mlrec.evaluation.scoring import same_sets, score_lists, served_within


def test_served_within_and_same_sets():
    served = np.array([[1, 2], [3, PAD]])
    candidates = np.array([[2, 1, 9], [4, 5, 6]])
    assert served_within(served, candidates) == pytest.approx(2 / 3)
    assert same_sets(np.array([[1, 2], [3, 4]]), np.array([[2, 1], [3, 5]])) == 0.5


def test_served_within_and_same_sets_of_nothing_are_zero():
    assert served_within(np.full((2, 3), PAD), np.array([[1, 2, 3], [4, 5, 6]])) == 0.0
    assert same_sets(np.zeros((0, 3), np.int64), np.zeros((0, 3), np.int64)) == 0.0


def test_score_lists_reports_only_the_ks_a_list_can_answer():
    held = HeldOut(np.array([1, 2]), [np.array([5]), np.array([6, 7])], np.array([1, 2]), 3, 1)
    ranked = np.array([[5, 1, 2], [9, 6, 7]])
    m = score_lists("x", "x", "test", ranked, held, catalogue_size=10, ks=(2, 3, 200), curve_k=3)
    assert set(m.metrics) == {f"{name}@{k}" for k in (2, 3) for name in ("hit_rate", "recall", "ndcg", "coverage")}
    assert m.metrics["recall@2"] == pytest.approx((1.0 + 0.5) / 2)
    assert m.metrics["coverage@3"] == pytest.approx(6 / 10)
    assert m.curve == pytest.approx([0.5, 0.75, 1.0])


def test_score_lists_standard_error_is_that_of_the_per_user_mean():
    held = HeldOut(np.array([1, 2]), [np.array([5]), np.array([6, 7])], np.array([1, 2]), 2, 0)
    m = score_lists("x", "x", "test", np.array([[5, 1], [9, 8]]), held, catalogue_size=10, ks=(2,), curve_k=2)
    # per-user recall@2: 1.0 and 0.0 -> mean 0.5, sample std sqrt(0.5), se = sqrt(0.5) / sqrt(2) = 0.5
    assert m.metrics["recall@2"] == 0.5 and m.se["recall@2"] == pytest.approx(0.5)
    assert m.width == 2 and set(m.se) == {"hit_rate@2", "recall@2", "ndcg@2"}
