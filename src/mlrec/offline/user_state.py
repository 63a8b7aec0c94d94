"""A user's recall state from their events: genre terms, seen filter, recent items, and the event window.

One implementation for both sides of the system:

- offline, the loader writes every user's state from the offline events (the terms, filter and recent
  items the numbered steps already computed with these same functions, plus the window);
- online, ``POST /ml/event`` reads the window Redis keeps for a user, appends the new events and calls
  :func:`states_after`, so a click updates exactly what the next offline run would compute.

The window is the user's latest :data:`WINDOW_N` events: enough for the genre terms (the latest
``PIT_WINDOW`` events, :func:`mlrec.offline.pit.latest_counts`) and the recent items that drive the
item-to-item channels (the latest ``RECENT_N``). The seen filter needs every event, so it is carried
forward as a set: the old filter plus the new items.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlrec.core.constants import ITEMID, LABEL, PIT_WINDOW, TS, USERID
from mlrec.offline.candidates import recent_items
from mlrec.offline.channels import RECENT_N
from mlrec.offline.pit import latest_counts, seen_items
from mlrec.offline.split import ordered
from mlrec.offline.terms import user_terms

WINDOW_N = max(PIT_WINDOW, RECENT_N)
# one event of the window as Redis stores it: 13 bytes, decoded by np.frombuffer with no parsing
WINDOW_DTYPE = np.dtype([(ITEMID, "<i4"), (LABEL, "i1"), (TS, "<i8")])


@dataclass(frozen=True)
class UserState:
    terms: list[int]  # genre codes clicked at least TERM_MIN_CLICKS times in the latest PIT_WINDOW events
    seen: np.ndarray  # int32 item ids the user has had an event with (the recall filter), first seen first
    recent: np.ndarray  # int32 ids of the latest RECENT_N events' items, most recent first
    window: np.ndarray  # WINDOW_DTYPE, the latest WINDOW_N events, oldest first


def window_events(events: pd.DataFrame, n: int = WINDOW_N) -> dict[int, np.ndarray]:
    """userid -> the user's latest ``n`` events as a :data:`WINDOW_DTYPE` array, oldest first.

    ``events`` is grouped by user and ordered by time within a user (:func:`mlrec.offline.split.ordered`)."""
    tail = events.groupby(USERID, sort=False).tail(n)
    records = np.empty(len(tail), dtype=WINDOW_DTYPE)
    for name in WINDOW_DTYPE.names or ():
        records[name] = tail[name].to_numpy()
    users = tail[USERID].to_numpy()
    if len(users) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    return dict(zip(users[starts].tolist(), np.split(records, starts[1:]), strict=True))


def window_frame(windows: Mapping[int, np.ndarray]) -> pd.DataFrame:
    """The events of several users' windows as one frame (USERID, ITEMID, LABEL, TS), one concatenation
    (a frame per user cost ~0.5 ms each: half of a 100-event request)."""
    users = [u for u, w in windows.items() if len(w)]
    records = np.concatenate([windows[u] for u in users]) if users else np.zeros(0, WINDOW_DTYPE)
    return pd.DataFrame(
        {
            USERID: np.repeat(np.asarray(users, dtype=np.int64), [len(windows[u]) for u in users]),
            ITEMID: records[ITEMID].astype(np.int32),
            LABEL: records[LABEL].astype(np.int8),
            TS: records[TS].astype(np.int64),
        }
    )


def states_after(
    windows: Mapping[int, np.ndarray], new: pd.DataFrame, genres: np.ndarray, seen: Mapping[int, np.ndarray]
) -> dict[int, UserState]:
    """Each user of ``new``'s state once its events (USERID, ITEMID, LABEL, TS) follow the user's
    ``windows`` (users with no window start empty) and ``seen`` filter.

    An event older than the window's latest is placed by its time, as the next offline run will
    place it; events with equal times keep the order window, then ``new`` (the logged events are
    appended after the ratings, so the offline sort keeps that order too)."""
    users = np.unique(new[USERID].to_numpy())
    before = window_frame({int(u): windows[int(u)] for u in users if int(u) in windows})
    events = ordered(pd.concat([before, new[[USERID, ITEMID, LABEL, TS]]], ignore_index=True))
    terms = user_terms(latest_counts(events, genres))
    recent = recent_items(events)
    window = window_events(events)
    added = seen_items(ordered(new))
    states = {}
    for u in users.tolist():
        old = np.asarray(seen.get(u, np.zeros(0, np.int32)), dtype=np.int32)
        fresh = pd.unique(added[u].astype(np.int32))
        states[u] = UserState(
            terms=terms.get(u, []),
            seen=np.r_[old, fresh[~np.isin(fresh, old)]].astype(np.int32),
            recent=recent[u].astype(np.int32),
            window=window[u],
        )
    return states
