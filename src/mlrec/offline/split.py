"""Step 1: ratings -> implicit feedback, split per user by time.

The protocol (the seed's): label = rating > 3. Each user's events are ordered by time (ties keep
file order, i.e. a stable sort); the last 10 go to online evaluation; of the remaining
``n - 10``, rank ``r`` goes to train when ``r < (n - 10) * 0.8`` and to test otherwise.
On ML-1M this yields 575,281 positives / 424,928 negatives and 60,400 online / 754,233 train /
185,576 test rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlrec.core.constants import (
    CLICK_RATING_THRESHOLD,
    ISTEST,
    ITEMID,
    LABEL,
    OFFLINE_TEST_RATIO,
    ONLINE_LAST_N,
    POS,
    RATING,
    TS,
    USERID,
)


@dataclass(frozen=True)
class Split:
    offline: pd.DataFrame  # userid, itemid, label, ts, pos, istest (0 train / 1 test); sorted by user, time
    online: pd.DataFrame  # userid, itemid, label, ts, pos: each user's last ONLINE_LAST_N events


def user_ranks(userids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows already grouped by user: (rank within user, user's row count), vectorized."""
    n = len(userids)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, userids[1:] != userids[:-1]])
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)
    return rank, np.repeat(counts, counts)


def split_ratings(
    ratings: pd.DataFrame,
    online_last_n: int = ONLINE_LAST_N,
    test_ratio: float = OFFLINE_TEST_RATIO,
) -> Split:
    """Label and split ``ratings`` (userid, itemid, rating, ts) per user by time."""
    order = np.lexsort((ratings[TS].to_numpy(), ratings[USERID].to_numpy()))  # stable: ties keep file order
    df = pd.DataFrame(
        {
            USERID: ratings[USERID].to_numpy()[order],
            ITEMID: ratings[ITEMID].to_numpy()[order],
            LABEL: (ratings[RATING].to_numpy()[order] > CLICK_RATING_THRESHOLD).astype(np.int8),
            TS: ratings[TS].to_numpy()[order],
        }
    )
    rank, count = user_ranks(df[USERID].to_numpy())
    df[POS] = rank.astype(np.int32)
    n_offline = count - online_last_n
    is_online = rank >= n_offline
    # float expression kept as the seed wrote it, so boundary rows land on the same side
    is_train = rank < n_offline * (1 - test_ratio)
    offline = df.loc[~is_online].reset_index(drop=True)
    offline[ISTEST] = (~is_train[~is_online]).astype(np.int8)
    online = df.loc[is_online].reset_index(drop=True)
    return Split(offline=offline, online=online)


def ordered(events: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by user, by time within a user (a stable sort: ties keep file order)."""
    order = np.lexsort((events[TS].to_numpy(), events[USERID].to_numpy()))
    return events.iloc[order].reset_index(drop=True)


def split_last_events(events: pd.DataFrame, last_n: int = ONLINE_LAST_N) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(earlier events, each user's last ``last_n`` events; all of them if fewer), by time.

    The held-out protocol one step earlier in time: the validation split every tuned model (the
    retrieval vectors, the evaluation's baselines) is chosen on, carved from the offline events so
    the held-out last 10 are never seen. Ties keep file order (a stable sort), as in the split.
    """
    events = ordered(events)
    rank, count = user_ranks(events[USERID].to_numpy())
    last = rank >= count - last_n
    return events.loc[~last].reset_index(drop=True), events.loc[last].reset_index(drop=True)
