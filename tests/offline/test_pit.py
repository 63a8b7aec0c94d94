"""Point-in-time genre counts: hand-computed windows, no leakage, serving window = training window."""

import numpy as np
import pandas as pd

from mlrec.core.constants import GENRES, ITEMID, LABEL, TITLE, USERID
from mlrec.offline.pit import (
    clk_col,
    imp_col,
    item_genre_lists,
    item_genre_matrix,
    latest_counts,
    pit_counts,
    seen_items,
)

MOVIES = pd.DataFrame(
    {
        ITEMID: [1, 2, 3, 5],
        TITLE: ["a", "b", "c", "e"],
        GENRES: ["Action|Comedy", "Comedy", "Drama", "unknown"],  # 5 has no known genre -> code 0
    }
)
ACTION, COMEDY, DRAMA = 1, 5, 8


def events(rows):
    return pd.DataFrame(rows, columns=[USERID, ITEMID, LABEL])


def test_item_genre_matrix_maps_unknown_to_zero():
    g = item_genre_matrix(MOVIES)
    assert g.shape == (6, 19)
    assert np.flatnonzero(g[1]).tolist() == [ACTION, COMEDY]
    assert np.flatnonzero(g[5]).tolist() == [0]
    assert not g[4].any()  # id 4 is not a movie
    assert item_genre_lists(g, np.array([1, 2, 5])) == {1: [ACTION, COMEDY], 2: [COMEDY], 5: [0]}


def test_counts_use_only_earlier_events():
    g = item_genre_matrix(MOVIES)
    off = events([(1, 1, 1), (1, 2, 0), (1, 3, 1), (2, 2, 1), (2, 1, 1)])
    pit = pit_counts(off, g)
    # user 1 row 0: nothing before
    assert pit.loc[0].sum() == 0
    # user 1 row 2: before it item 1 (Action, Comedy; clicked) and item 2 (Comedy; not clicked)
    assert pit.loc[2, imp_col(ACTION)] == 1 and pit.loc[2, clk_col(ACTION)] == 1
    assert pit.loc[2, imp_col(COMEDY)] == 2 and pit.loc[2, clk_col(COMEDY)] == 1
    assert pit.loc[2, imp_col(DRAMA)] == 0
    # user 2 starts fresh: row 3 sees nothing of user 1
    assert pit.loc[3].sum() == 0
    assert pit.loc[4, imp_col(COMEDY)] == 1 and pit.loc[4, clk_col(COMEDY)] == 1


def test_window_is_the_last_ten_events():
    g = item_genre_matrix(MOVIES)
    off = events([(1, 2, 1)] * 15)
    pit = pit_counts(off, g)
    assert pit[imp_col(COMEDY)].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10, 10, 10]
    latest = latest_counts(off, g)
    assert latest.loc[0, imp_col(COMEDY)] == 10  # serving sees 10 events, as training does (not 11)
    assert latest.loc[0, USERID] == 1


def test_window_slides_out_old_events():
    g = item_genre_matrix(MOVIES)
    # one Drama click, then 10 Comedy events: by row 11 the Drama event has left the window
    off = events([(1, 3, 1)] + [(1, 2, 0)] * 11)
    pit = pit_counts(off, g)
    assert pit.loc[10, imp_col(DRAMA)] == 1
    assert pit.loc[11, imp_col(DRAMA)] == 0
    assert latest_counts(off, g).loc[0, imp_col(DRAMA)] == 0


def test_no_leakage_changing_a_later_event_leaves_earlier_rows_unchanged():
    g = item_genre_matrix(MOVIES)
    rng = np.random.default_rng(0)
    items, labels = rng.choice([1, 2, 3, 5], 30), rng.integers(0, 2, 30)
    base = events([(1, int(i), int(y)) for i, y in zip(items, labels, strict=True)])
    before = pit_counts(base, g)
    for k in (5, 17, 29):
        changed = base.copy()
        changed.loc[k, ITEMID] = 3 if changed.loc[k, ITEMID] != 3 else 1
        changed.loc[k, LABEL] = 1 - changed.loc[k, LABEL]
        after = pit_counts(changed, g)
        pd.testing.assert_frame_equal(before.iloc[: k + 1], after.iloc[: k + 1])
        if k + 1 < len(base):  # the change is visible to the very next row: the check can fail
            assert not before.iloc[k + 1].equals(after.iloc[k + 1])


def test_seen_items():
    off = events([(1, 1, 1), (1, 2, 0), (3, 5, 1)])
    seen = seen_items(off)
    assert {u: v.tolist() for u, v in seen.items()} == {1: [1, 2], 3: [5]}
