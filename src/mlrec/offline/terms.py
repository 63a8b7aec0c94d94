"""Step 3: term recall — a user's terms are the genres they clicked often in their latest window.

A user's term set is every known genre (code >= 1) with at least ``TERM_MIN_CLICKS`` clicks among
their latest ``PIT_WINDOW`` offline events. Online, Elasticsearch matches these terms against each
item's genre terms (the item side is ``pit.item_genre_lists``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlrec.core.constants import N_GENRES, TERM_MIN_CLICKS, USERID
from mlrec.offline.pit import clk_col


def user_terms(latest: pd.DataFrame, min_clicks: int = TERM_MIN_CLICKS) -> dict[int, list[int]]:
    """userid -> genre codes with >= ``min_clicks`` clicks; users with none map to []."""
    clicks = latest[[clk_col(g) for g in range(1, N_GENRES)]].to_numpy()
    rows, cols = np.nonzero(clicks >= min_clicks)
    users = latest[USERID].to_numpy()
    terms: dict[int, list[int]] = {int(u): [] for u in users}
    if len(rows) == 0:  # nobody has a term (np.split would still return one empty part)
        return terms
    for row, genres in zip(np.unique(rows), np.split(cols + 1, np.flatnonzero(np.diff(rows)) + 1), strict=True):
        terms[int(users[row])] = genres.tolist()
    return terms
