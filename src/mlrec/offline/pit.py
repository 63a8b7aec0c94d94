"""Step 2: point-in-time genre counts, item genres and seen-item filters.

For every offline event, the user's genre impression and click counts over the ``PIT_WINDOW``
events *strictly before it* (no leakage: an event never sees itself or anything later). For
serving, the same counts over each user's latest ``PIT_WINDOW`` offline events — the same
window size as in training (the seed counted 11 events at serving time, a train/serve skew).

Everything is computed from per-genre prefix sums: count(rows lo..r-1) = cs[r] - cs[lo], with
``lo = max(user_start, r - window)``. That is O(rows x genres) numpy work, no Python loop over
events, and the memory high-water mark is a few arrays of one column each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mlrec.core.constants import GENRES, GENRES_MAPPING, ITEMID, LABEL, N_GENRES, PIT_WINDOW, USERID


def imp_col(genre: int) -> str:
    return f"user_g{genre}_imp"


def clk_col(genre: int) -> str:
    return f"user_g{genre}_clk"


COUNT_COLUMNS = [c for g in range(N_GENRES) for c in (imp_col(g), clk_col(g))]


def item_genre_matrix(movies: pd.DataFrame) -> np.ndarray:
    """Bool matrix [max_itemid + 1, N_GENRES]: row = itemid, column = genre code.

    A genre name outside the vocabulary (ML-100K's ``unknown``) maps to code 0, so an item
    with no known genre still has exactly one genre and never breaks a later step.
    """
    itemids = movies[ITEMID].to_numpy()
    dummies = movies[GENRES].fillna("").str.get_dummies(sep="|")
    matrix = np.zeros((int(itemids.max()) + 1, N_GENRES), dtype=bool)
    for name in dummies.columns:
        code = GENRES_MAPPING.get(name, 0)
        matrix[itemids, code] |= dummies[name].to_numpy().astype(bool)
    no_genre = ~matrix[itemids].any(axis=1)
    matrix[itemids[no_genre], 0] = True
    return matrix


def _user_starts(userids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index of each row's user, and of each user (rows must be grouped by user)."""
    n = len(userids)
    starts = np.flatnonzero(np.r_[True, userids[1:] != userids[:-1]]) if n else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, n])
    return np.repeat(starts, counts), starts


def _window_counts(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """sum(x[lo:hi]) for each (lo, hi) pair via one prefix sum."""
    cs = np.zeros(len(x) + 1, dtype=np.int32)
    np.cumsum(x, out=cs[1:])
    return (cs[hi] - cs[lo]).astype(np.uint8)


def _counts(offline: pd.DataFrame, genres: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> pd.DataFrame:
    items = offline[ITEMID].to_numpy()
    labels = offline[LABEL].to_numpy().astype(bool)
    out = {}
    for g in range(N_GENRES):
        has_g = genres[items, g]
        out[imp_col(g)] = _window_counts(has_g, lo, hi)
        out[clk_col(g)] = _window_counts(has_g & labels, lo, hi)
    return pd.DataFrame(out)


def pit_counts(offline: pd.DataFrame, genres: np.ndarray, window: int = PIT_WINDOW) -> pd.DataFrame:
    """Per offline row (grouped by user, ordered by time): counts over the previous ``window`` events."""
    userids = offline[USERID].to_numpy()
    row_start, _ = _user_starts(userids)
    hi = np.arange(len(userids))
    lo = np.maximum(row_start, hi - window)
    return _counts(offline, genres, lo, hi)


def latest_counts(offline: pd.DataFrame, genres: np.ndarray, window: int = PIT_WINDOW) -> pd.DataFrame:
    """Per user: counts over the user's latest ``window`` offline events (what serving sees)."""
    userids = offline[USERID].to_numpy()
    _, starts = _user_starts(userids)
    ends = np.r_[starts[1:], len(userids)]
    lo_user = np.maximum(starts, ends - window)
    # evaluate each user's window at its end: reuse _counts with one (lo, hi) per user
    counts = _counts(offline, genres, lo_user, ends)
    counts.insert(0, USERID, userids[starts])
    return counts


def seen_items(offline: pd.DataFrame) -> dict[int, np.ndarray]:
    """userid -> item ids the user interacted with offline (the online recall filter)."""
    userids = offline[USERID].to_numpy()
    if len(userids) == 0:  # np.split would still return one (empty) part
        return {}
    _, starts = _user_starts(userids)
    return dict(zip(userids[starts].tolist(), np.split(offline[ITEMID].to_numpy(), starts[1:]), strict=True))


def genre_matrix(lists: Mapping[int, Sequence[int] | np.ndarray]) -> np.ndarray:
    """The item x genre matrix back from :func:`item_genre_lists` (rows of items not listed stay False)."""
    ids = np.fromiter(lists, dtype=np.int64, count=len(lists))
    matrix = np.zeros((int(ids.max(initial=0)) + 1, N_GENRES), dtype=bool)
    for itemid, codes in lists.items():
        matrix[itemid, np.asarray(codes, dtype=np.int64)] = True
    return matrix


def item_genre_lists(genres: np.ndarray, itemids: np.ndarray) -> dict[int, list[int]]:
    """itemid -> sorted genre codes (the item's terms)."""
    rows, cols = np.nonzero(genres[itemids])
    per_item = np.split(cols, np.flatnonzero(np.diff(rows)) + 1) if len(rows) else []
    return {int(i): c.tolist() for i, c in zip(itemids[np.unique(rows)], per_item, strict=True)}
