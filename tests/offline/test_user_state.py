"""Parity: a user's state after events, from the window Redis keeps, equals the offline computation on
the whole history (the same functions the terms, filter and recent-items steps use)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlrec.core.constants import ITEMID, LABEL, N_GENRES, PIT_WINDOW, TS, USERID
from mlrec.offline.candidates import recent_items
from mlrec.offline.channels import RECENT_N
from mlrec.offline.pit import genre_matrix, item_genre_lists, latest_counts, seen_items
from mlrec.offline.split import ordered
from mlrec.offline.terms import user_terms
from mlrec.offline.user_state import WINDOW_DTYPE, WINDOW_N, states_after, window_events

N_ITEMS = 60


def _genres(rng) -> np.ndarray:
    genres = rng.random((N_ITEMS + 1, N_GENRES)) < 0.15
    genres[0] = False
    genres[1:, 0] |= ~genres[1:].any(axis=1)  # no genre -> "unknown", as item_genre_matrix does
    return genres


def _events(rng, users, n, t0=0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            USERID: rng.choice(users, n).astype(np.int64),
            ITEMID: rng.integers(1, N_ITEMS + 1, n).astype(np.int32),
            LABEL: (rng.random(n) < 0.6).astype(np.int8),
            TS: (t0 + rng.integers(0, 1000, n)).astype(np.int64),
        }
    )


@pytest.mark.parametrize("seed", range(6))
def test_state_after_new_events_equals_the_offline_state_of_the_whole_history(seed):
    """Old events -> the loader's window and filter; new events (some older than the window's latest,
    a brand-new user among them) -> states_after; the offline functions on old + new agree on terms,
    recent items, window and the filter's set."""
    rng = np.random.default_rng(seed)
    genres = _genres(rng)
    old = ordered(_events(rng, [1, 2, 3], 90).drop_duplicates([USERID, ITEMID]))  # MovieLens: one rating a pair
    new = _events(rng, [1, 3, 7], 25, t0=700)  # overlaps the old times: out-of-order arrivals
    states = states_after(window_events(old), new, genres, seen_items(old))

    everything = ordered(pd.concat([old, new], ignore_index=True))  # new rows after old: file order on ties
    terms = user_terms(latest_counts(everything, genres))
    recent = recent_items(everything)
    window = window_events(everything)
    seen = seen_items(everything)
    assert sorted(states) == [1, 3, 7]
    for u, state in states.items():
        assert state.terms == terms[u]
        assert np.array_equal(state.recent, recent[u])
        assert len(state.recent) == min(RECENT_N, len(seen[u]))
        assert np.array_equal(state.window, window[u]) and state.window.dtype == WINDOW_DTYPE
        assert len(state.window) == min(WINDOW_N, len(seen[u])) and WINDOW_N >= PIT_WINDOW
        assert sorted(set(state.seen.tolist())) == sorted(set(seen[u].tolist()))
        assert len(state.seen) == len(set(state.seen.tolist()))  # a repeated item is not added twice
        assert np.array_equal(state.seen[: len(seen_items(old).get(u, []))], seen_items(old).get(u, []))


def test_the_catalogue_genre_matrix_round_trips_through_the_item_genre_lists():
    genres = _genres(np.random.default_rng(0))
    items = np.flatnonzero(genres.any(axis=1))
    assert np.array_equal(genre_matrix(item_genre_lists(genres, items)), genres)


def test_a_window_keeps_the_latest_events_oldest_first():
    events = ordered(
        pd.DataFrame(
            {
                USERID: [5] * 30 + [6],
                ITEMID: np.r_[np.arange(1, 31), 9],
                LABEL: np.ones(31, np.int8),
                TS: np.r_[np.arange(30), 3],
            }
        )
    )
    windows = window_events(events)
    assert windows[5][ITEMID].tolist() == list(range(31 - WINDOW_N, 31))
    assert windows[6][ITEMID].tolist() == [9]
