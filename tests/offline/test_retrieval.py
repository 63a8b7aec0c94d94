"""mlrec.offline.retrieval and the last-events split it is tuned on."""

import numpy as np
import pandas as pd
import pytest

from mlrec.core.constants import ITEMID, LABEL, TS, USERID
from mlrec.offline.retrieval import RetrievalConfig, interactions, recall_at_k, train_retrieval
from mlrec.offline.split import split_last_events


def _events(rows):
    return pd.DataFrame(rows, columns=[USERID, ITEMID, LABEL, TS])


def test_split_last_events_takes_each_users_latest_by_time():
    ev = _events([(1, 10, 1, 5), (1, 11, 0, 1), (1, 12, 1, 3), (2, 20, 1, 2), (1, 13, 1, 3)])
    fit, last = split_last_events(ev, last_n=2)
    # user 1 by time (ties in file order): 11@1, 12@3, 13@3, 10@5 -> last two are 13, 10; user 2 has one event
    assert last[ITEMID].tolist() == [13, 10, 20]
    assert fit[ITEMID].tolist() == [11, 12]
    assert len(fit) + len(last) == len(ev)


def _brute_recall(u, v, seen_sets, positives, k):
    out = []
    for user, pos in positives.items():
        scores = {i: float(u[user] @ v[i]) for i in range(1, v.shape[0]) if i not in seen_sets.get(user, set())}
        top = sorted(scores, key=lambda i: -scores[i])[:k]
        out.append(len(set(top) & pos) / len(pos))
    return float(np.mean(out))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recall_at_k_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, k = 7, 30, 5
    u, v = rng.normal(size=(n_users, 4)), rng.normal(size=(n_items, 4))
    fit = _events(
        [
            (int(a), int(b), 1, 0)
            for a, b in zip(rng.integers(1, n_users, 40), rng.integers(1, n_items, 40), strict=True)
        ]
    )
    held = _events(
        [
            (int(a), int(b), int(c), 1)
            for a, b, c in zip(
                rng.integers(1, n_users, 25), rng.integers(1, n_items, 25), rng.integers(0, 2, 25), strict=True
            )
        ]
    )
    seen = interactions(fit, n_users, n_items)
    seen_sets = fit.groupby(USERID)[ITEMID].apply(set).to_dict()
    pos = held[held[LABEL] == 1].groupby(USERID)[ITEMID].apply(set).to_dict()
    assert recall_at_k(u, v, seen, held, k) == pytest.approx(_brute_recall(u, v, seen_sets, pos, k))


def test_interactions_are_binary_whatever_the_label():
    x = interactions(_events([(1, 2, 0, 0), (1, 2, 1, 1), (2, 3, 1, 0)]), 3, 4)
    assert x.toarray().tolist() == [[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]


def test_train_retrieval_picks_the_best_validation_setting_and_is_repeatable():
    rng = np.random.default_rng(0)
    # two taste groups: users 1-20 pick items 1-15, users 21-40 pick items 16-30, in time order
    rows = []
    for user in range(1, 41):
        pool = np.arange(1, 16) if user <= 20 else np.arange(16, 31)
        for ts, item in enumerate(rng.choice(pool, 12, replace=False)):
            rows.append((user, int(item), 1, ts))
    offline = _events(rows)
    cfg = RetrievalConfig(factors=4, iterations=5, regularization=(0.01, 100.0), alpha=(1.0,), k=5, last_n=3)
    result = train_retrieval(offline, 41, 31, cfg)
    recalls = [g["val_recall"] for g in result.grid]
    assert len(result.grid) == 2 and result.val_recall == max(recalls)
    assert result.chosen["regularization"] == result.grid[int(np.argmax(recalls))]["regularization"]
    assert result.val_recall > 0.5  # the planted groups are found
    again = train_retrieval(offline, 41, 31, cfg)
    np.testing.assert_array_equal(result.user_vectors, again.user_vectors)
    assert result.user_vectors.shape == (41, 4) and result.item_vectors.dtype == np.float32
