"""Tuning: the validation split carved from the offline events, its scoring, the grid search and the refit."""

import numpy as np
import pandas as pd
import pytest

from mlrec.core.constants import ISTEST, ITEMID, LABEL, ONLINE_LAST_N, RATING, TS, USERID
from mlrec.core.paths import SPLIT_SCRIPT
from mlrec.evaluation.baselines import BaselineInputs, BaselineSpec, seen_mask
from mlrec.evaluation.errors import EvaluationError
from mlrec.evaluation.heldout import HeldOut
from mlrec.evaluation.metrics import PAD
from mlrec.evaluation.tuning import (
    VALIDATION_LAST_N,
    describe,
    run_baselines,
    tune,
    validation,
    validation_scores,
    validation_split,
)
from mlrec.offline.split import split_ratings

N_ITEMS = 60


def ratings(seed=0, users=25):
    """Random ratings with distinct (user, item) pairs, repeated timestamps, and users of 12 to 40 events."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, users + 1):
        n = int(rng.integers(12, 41))
        items = rng.choice(np.arange(1, N_ITEMS + 1), size=n, replace=False)
        rows.append(pd.DataFrame({USERID: u, ITEMID: items, RATING: rng.integers(1, 6, n), TS: rng.integers(0, 15, n)}))
    return pd.concat(rows, ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def keys(df):
    return set(zip(df[USERID], df[ITEMID], strict=True))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_validation_split_is_each_users_last_offline_events_and_never_a_held_out_one(seed):
    split = split_ratings(ratings(seed))
    val = validation_split(split.offline)
    assert not keys(val.held) & keys(split.online) and not keys(val.fit) & keys(split.online)
    assert not keys(val.held) & keys(val.fit)
    assert len(val.held) + len(val.fit) == len(split.offline)
    # brute force: per user, the offline events in file order (the split's time order) and their last 10
    for user, events in split.offline.groupby(USERID, sort=True):
        held = val.held[val.held[USERID] == user]
        fit = val.fit[val.fit[USERID] == user]
        assert held[ITEMID].tolist() == events[ITEMID].tolist()[-VALIDATION_LAST_N:]
        assert fit[ITEMID].tolist() == events[ITEMID].tolist()[:-VALIDATION_LAST_N]
        assert len(fit) == 0 or held[TS].min() >= fit[TS].max()  # validation comes after the fitting data


def test_validation_split_orders_by_time_whatever_the_row_order_and_keeps_a_short_user_whole():
    offline = pd.DataFrame(
        {
            USERID: [2, 1, 1, 2, 1] + [3] * 12,
            ITEMID: [20, 13, 11, 21, 12, *range(100, 112)],
            TS: [5, 3, 1, 4, 2, *range(12)],
            LABEL: [1] * 17,
            ISTEST: [0] * 17,
        }
    )
    val = validation_split(offline, last_n=10)
    assert val.held[USERID].tolist() == [1, 1, 1, 2, 2] + [3] * 10  # users 1 and 2 have fewer than 10: all held
    assert val.held[ITEMID].tolist()[:5] == [11, 12, 13, 21, 20]
    assert val.fit[ITEMID].tolist() == [100, 101]  # user 3's first two
    assert VALIDATION_LAST_N == ONLINE_LAST_N  # the validation cut mirrors the served protocol


def test_validation_split_without_timestamps_names_the_split_script():
    with pytest.raises(EvaluationError, match=r"lack columns \['ts'\]") as err:
        validation_split(pd.DataFrame({USERID: [1], ITEMID: [2]}))
    assert SPLIT_SCRIPT in err.value.hint


def base_inputs(offline, catalogue=None):
    catalogue = np.arange(1, N_ITEMS + 1) if catalogue is None else catalogue
    users = np.unique(offline[USERID])
    seen = {int(u): g[ITEMID].to_numpy() for u, g in offline.groupby(USERID)}
    vectors = np.zeros((0, 4), np.float32)
    return BaselineInputs(users, catalogue, seen_mask(seen, users, catalogue), offline, vectors, vectors)


def test_validation_ranks_users_with_a_validation_positive_and_removes_only_the_fit_items():
    split = split_ratings(ratings(3))
    inp = base_inputs(split.offline)
    val = validation(inp)
    vsplit = validation_split(split.offline)
    with_positive = np.unique(vsplit.held.loc[vsplit.held[LABEL] == 1, USERID])
    np.testing.assert_array_equal(val.inputs.userids, with_positive)
    np.testing.assert_array_equal(val.held.userids, with_positive)
    pd.testing.assert_frame_equal(val.inputs.offline, vsplit.fit)
    fit_items = {int(u): g[ITEMID].to_numpy() for u, g in vsplit.fit.groupby(USERID)}
    np.testing.assert_array_equal(val.inputs.seen, seen_mask(fit_items, with_positive, inp.catalogue))
    for user, relevant in zip(val.held.userids, val.held.relevant, strict=True):
        held = vsplit.held[(vsplit.held[USERID] == user) & (vsplit.held[LABEL] == 1)]
        assert relevant.tolist() == sorted(held[ITEMID].tolist())


def test_validation_without_any_positive_is_refused():
    offline = pd.DataFrame({USERID: [1, 1], ITEMID: [1, 2], TS: [0, 1], LABEL: [0, 0], ISTEST: [0, 0]})
    with pytest.raises(EvaluationError, match="no user has a positive"):
        validation(base_inputs(offline))


def test_validation_scores_are_the_reported_ndcg_and_recall():
    held = HeldOut(np.array([1, 2]), [np.array([5]), np.array([6, 7])], np.array([1, 2]), 2, 0)
    lists = np.full((2, 50), PAD)
    lists[0, :2] = [9, 5]  # user 1: its one positive at rank 2
    lists[1, 0], lists[1, 49] = 7, 6  # user 2: both positives, ranks 1 and 50
    scores = validation_scores(lists, held, catalogue_size=100)
    ideal_2 = 1 + 1 / np.log2(3)
    assert scores["ndcg@10"] == pytest.approx((1 / np.log2(3) + 1 / ideal_2) / 2)
    assert scores["recall@50"] == pytest.approx(1.0)


def oracle_spec(val, calls, ranks):
    """A baseline whose list puts the validation positives at position ``rank``: the best setting is rank 0."""
    positives = {int(u): set(r.tolist()) for u, r in zip(val.held.userids, val.held.relevant, strict=True)}

    def build(inp, k, rank=0):
        calls.append((inp, rank))
        out = np.full((len(inp.userids), k), PAD)
        for row, user in enumerate(inp.userids):
            mine = sorted(positives.get(int(user), ()))
            other = [int(i) for i, s in zip(inp.catalogue, inp.seen[row], strict=True) if not s and i not in mine]
            ranked = (other[:rank] + mine + other[rank:])[:k]
            out[row, : len(ranked)] = ranked
        return out

    return BaselineSpec("oracle", "oracle", "test", build, tuple({"rank": r} for r in ranks))


def test_tune_picks_the_best_grid_point_and_the_earlier_one_on_a_tie():
    inp = base_inputs(split_ratings(ratings(4)).offline)
    val = validation(inp)
    calls = []
    tuning = tune(oracle_spec(val, calls, ranks=(30, 0, 5, 0)), val)
    assert tuning.chosen == {"rank": 0}
    assert tuning.trials[1].params == tuning.chosen and tuning.validation == tuning.trials[1].metrics
    ndcg = [t.metrics["ndcg@10"] for t in tuning.trials]
    assert ndcg[1] == pytest.approx(1.0) and ndcg[0] < ndcg[2] < ndcg[1] and ndcg[3] == ndcg[1]
    assert tuning.users == len(val.held.userids)
    # every grid point was fit on the validation inputs, never on the events it is scored against
    assert [rank for _, rank in calls] == [30, 0, 5, 0]
    assert all(call_inp is val.inputs for call_inp, _ in calls)


def test_run_baselines_refits_the_pick_on_all_offline_events_and_leaves_an_untuned_baseline_alone():
    inp = base_inputs(split_ratings(ratings(5)).offline)
    calls, untuned_calls = [], []
    spec = oracle_spec(validation(inp), calls, ranks=(4, 0, 2))

    def untuned(inp, k):
        untuned_calls.append(inp)
        return np.full((len(inp.userids), k), PAD)

    runs = run_baselines([spec, BaselineSpec("fixed", "fixed", "test", untuned, None)], inp, 7)
    assert runs["oracle"].tuning.chosen == {"rank": 0}
    final_inp, final_rank = calls[-1]
    assert final_inp is inp and final_rank == 0 and len(calls) == 4
    assert runs["oracle"].lists.shape == (len(inp.userids), 7)
    assert runs["fixed"].tuning is None and untuned_calls == [inp]
    assert runs["oracle"].seconds >= runs["oracle"].tuning.seconds > 0


def test_run_baselines_without_a_grid_needs_no_validation_split():
    offline = pd.DataFrame({USERID: [1], ITEMID: [2], LABEL: [0], ISTEST: [0]})  # no timestamps, no positive
    spec = BaselineSpec("fixed", "fixed", "test", lambda inp, k: np.full((len(inp.userids), k), PAD), None)
    assert run_baselines([spec], base_inputs(offline), 3)["fixed"].tuning is None


def test_describe_writes_a_setting_in_one_line():
    assert describe({"lam": 500.0, "interactions": "rated", "neighbours": None, "factors": 32}) == (
        "lam=500 interactions=rated neighbours=all factors=32"
    )
    assert describe({}) == ""
