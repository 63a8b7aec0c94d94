"""The events ``POST /ml/event`` logged, as new ratings for the next offline run: this closes the loop.

The data step (``s0_get_data.py``) exports the Redis event stream (the durable log, see
:mod:`mlrec.online.events`) to :meth:`~mlrec.core.paths.Paths.logged_events`, one row per
``event_id``; the split step appends those rows after the dataset's ratings, so a user's logged clicks
are their latest events (held out last, then the terms, filters and features of the next load).

The export sits beside the raw folder, never in it: the raw folder is the published release, checked
against its manifest, and a rebuilt release (``--force``) must not take the log with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import redis

from mlrec.core import io
from mlrec.core.constants import ITEMID, RATING, TS, USERID
from mlrec.data.movielens import RATING_DTYPES
from mlrec.online import redis_store

EVENT_ID = "event_id"
# a logged user id may run this far past the dataset's largest: new users continue its id space. Ids far
# beyond (a benchmark's, a test's) would make every by-id table of the offline steps that large.
MAX_NEW_USER_IDS = 1_000_000


def export_events(client: redis.Redis, path: Path) -> int:
    """Write every logged event (userid, itemid, rating, timestamp, event_id; first of each id) to
    ``path``, replacing it atomically; returns the number of events."""
    columns = ["userid", "itemid", "rating", "timestamp", EVENT_ID]  # the stream's field names
    events = pd.DataFrame(redis_store.read_events(client), columns=columns)
    events = events.rename(columns={"userid": USERID, "itemid": ITEMID, "rating": RATING, "timestamp": TS})
    events = events.drop_duplicates(EVENT_ID).astype({**RATING_DTYPES, EVENT_ID: str})
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_parquet(events, path)
    return len(events)


def merge_events(ratings: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, int, int]:
    """``ratings`` with the exported events appended (none if ``path`` does not exist); also returns how
    many were merged and how many skipped (an item the ratings never name, or a user id beyond
    :data:`MAX_NEW_USER_IDS` past the largest)."""
    if not path.is_file():
        return ratings, 0, 0
    logged = pd.read_parquet(path, columns=[USERID, ITEMID, RATING, TS])
    max_user = int(ratings[USERID].max()) if len(ratings) else 0
    keep = logged[ITEMID].isin(np.unique(ratings[ITEMID].to_numpy())) & logged[USERID].between(
        1, max_user + MAX_NEW_USER_IDS
    )
    merged = pd.concat([ratings, logged[keep].astype(RATING_DTYPES)], ignore_index=True)
    return merged, int(keep.sum()), int((~keep).sum())
