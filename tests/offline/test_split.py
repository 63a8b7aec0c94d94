"""The split rule on small fixtures with hand-computed answers."""

import numpy as np
import pandas as pd

from mlrec.core.constants import ISTEST, ITEMID, LABEL, RATING, TS, USERID
from mlrec.offline.split import split_ratings, user_ranks


def ratings_for(user: int, n: int, start_item: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            USERID: user,
            ITEMID: np.arange(start_item, start_item + n),
            RATING: (np.arange(n) % 5) + 1,
            TS: 1000 + np.arange(n) * 10,
        }
    )


def test_label_is_rating_above_three():
    df = ratings_for(1, 25)
    split = split_ratings(df)
    both = pd.concat([split.offline, split.online])
    merged = both.merge(df, on=[USERID, ITEMID])
    assert (merged[LABEL] == (merged[RATING] > 3)).all()


def test_counts_per_user_follow_the_rule():
    # user 1: 25 events -> 10 online; 15 offline: ranks < 15*0.8=12 train (12), 3 test
    # user 2: 11 events -> 10 online; 1 offline: rank 0 < 0.8 -> train
    # user 3: 10 events -> all online
    # user 4: 21 events -> 10 online; 11 offline: ranks < 8.8 -> 9 train, 2 test
    df = pd.concat([ratings_for(1, 25), ratings_for(2, 11), ratings_for(3, 10), ratings_for(4, 21)])
    split = split_ratings(df.sample(frac=1, random_state=0))  # input order must not matter
    off, on = split.offline, split.online
    assert on.groupby(USERID).size().to_dict() == {1: 10, 2: 10, 3: 10, 4: 10}
    train = off[off[ISTEST] == 0].groupby(USERID).size().to_dict()
    test = off[off[ISTEST] == 1].groupby(USERID).size().to_dict()
    assert train == {1: 12, 2: 1, 4: 9}
    assert test == {1: 3, 4: 2}


def test_time_order_decides_membership():
    df = ratings_for(1, 25)
    split = split_ratings(df.iloc[::-1])
    # the last 10 by time are online, the earliest 12 are train
    assert set(split.online[ITEMID]) == set(range(16, 26))
    train = split.offline[split.offline[ISTEST] == 0]
    assert set(train[ITEMID]) == set(range(1, 13))
    assert split.offline[TS].is_monotonic_increasing


def test_ties_keep_file_order():
    df = ratings_for(1, 25)
    df[TS] = 5  # every event at the same second: file order decides
    split = split_ratings(df)
    assert split.offline[ITEMID].tolist() == list(range(1, 16))
    assert split.online[ITEMID].tolist() == list(range(16, 26))


def test_user_ranks():
    rank, count = user_ranks(np.array([7, 7, 7, 2, 2, 9]))
    assert rank.tolist() == [0, 1, 2, 0, 1, 0]
    assert count.tolist() == [3, 3, 3, 2, 2, 1]
