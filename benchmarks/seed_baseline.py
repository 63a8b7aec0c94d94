"""The seed's row-at-a-time algorithms, re-expressed only to time them against ours in the same run.

Not used by the pipeline. ``split`` applies the split rule with a row-wise ``DataFrame.apply``;
``pit`` walks every event in Python and deep-copies a per-user genre dict for every row — the two
patterns the seed used. Both produce the same numbers as :mod:`mlrec.offline.split` / :mod:`mlrec.offline.pit`
(the benchmark checks that too), so the timing comparison is like for like.
"""

from __future__ import annotations

import copy
from collections import deque

import numpy as np
import pandas as pd

from mlrec.core.constants import ITEMID, LABEL, OFFLINE_TEST_RATIO, ONLINE_LAST_N, PIT_WINDOW, RATING, TS, USERID


def split(ratings: pd.DataFrame) -> pd.Series:
    """Row-wise split: 0 train, 1 test, 2 online, aligned with the (user, time)-sorted frame."""
    df = ratings.copy()
    df[LABEL] = df[RATING].map(lambda r: 1 if r > 3 else 0)
    df = df.merge(df.groupby(USERID)[ITEMID].count().rename("u_cnt"), on=USERID)
    df = df.sort_values([USERID, TS], kind="stable").reset_index(drop=True)
    df["rn"] = df.groupby(USERID).cumcount()

    def rule(x):
        if x["rn"] >= x["u_cnt"] - ONLINE_LAST_N:
            return 2
        if x["rn"] < (x["u_cnt"] - ONLINE_LAST_N) * (1 - OFFLINE_TEST_RATIO):
            return 0
        return 1

    return df.apply(rule, axis=1)


def pit(offline: pd.DataFrame, item_genres: dict[int, list[int]], window: int = PIT_WINDOW) -> list[dict]:
    """Per row: {genre: [impressions, clicks]} over the previous ``window`` events of the user."""
    out: list[dict] = []
    prev_user, events, counts = None, deque(), {}
    for user, item, label in offline[[USERID, ITEMID, LABEL]].itertuples(index=False):
        if user != prev_user:
            prev_user, events, counts = user, deque(), {}
        out.append(copy.deepcopy(counts))  # the previous <= window events of this user
        events.append((item, label))
        for g in item_genres[item]:
            counts.setdefault(g, [0, 0])
            counts[g][0] += 1
            counts[g][1] += label
        if len(events) > window:
            old_item, old_label = events.popleft()
            for g in item_genres[old_item]:
                counts[g][0] -= 1
                counts[g][1] -= old_label
    return out


def pit_to_matrix(rows: list[dict], n_genres: int) -> np.ndarray:
    """[rows, 2 * n_genres] in mlrec.offline.pit.COUNT_COLUMNS order, for comparison."""
    mat = np.zeros((len(rows), 2 * n_genres), dtype=np.int64)
    for r, counts in enumerate(rows):
        for g, (imp, clk) in counts.items():
            mat[r, 2 * g], mat[r, 2 * g + 1] = imp, clk
    return mat
