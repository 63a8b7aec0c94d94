"""``POST /ml/event``: what a user just did, logged durably and applied to their recall state in Redis.

An event is ``{"userid", "itemid", "rating" (1-5), "timestamp" (optional, default now), "event_id"
(optional)}``; a request carries one or a list of at most :data:`MAX_EVENTS`. Every event is checked
before any is applied, so a bad one rejects the whole request (400 naming ``events[i].field``) and
changes nothing.

Applying is atomic per user: the events' users are read (hash, version) in one round trip, their new
state computed for all of them at once, then one Lua script per user (pipelined) compares and sets it
(:func:`mlrec.online.redis_store.apply_user_events`):

1. if the user's version and the events' ids are as read, each event is appended to the
   :data:`~mlrec.online.redis_store.EVENTS_STREAM` stream, the log the next offline run reads back as
   ratings; Redis keeps it in its append-only file (written before the reply), so an acknowledged
   event survives a crash or restart of any process;
2. its id is remembered for :data:`~mlrec.online.redis_store.EVENT_ID_TTL_S` (``SET evt:<id>``): a
   repeated ``event_id`` changes nothing (idempotent retries);
3. the user's hash gets the state :func:`mlrec.offline.user_state.states_after` computes from the
   window Redis kept plus the new events (the seen filter, the recent items the item-to-item channels
   read, the genre terms): the same functions the offline steps use;
4. a user without a trained vector (new to the system) gets one folded in from the items they picked
   (:func:`mlrec.models.als.fold_in`, against the served item vectors), refolded at each event, so
   the kNN channel serves them too; a user with an offline-trained vector keeps it until the next
   offline run.

A user another request changed meanwhile is read and computed again (jittered backoff, at most
:data:`MAX_ATTEMPTS` times); the others are not held back. Per user, not per batch: with one
transaction per batch (``WATCH``), two clients posting 100-event batches over 2,000 shared users
conflicted on nearly every pair of batches and 6 of 180 batches failed after 12 attempts.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import redis

from mlrec.core.constants import CLICK_RATING_THRESHOLD, ITEMID, LABEL, TS, USERID
from mlrec.offline.user_state import states_after
from mlrec.online import redis_store
from mlrec.online.errors import BadRequest, checked_int

MAX_EVENTS = 1000  # events per request
MAX_FUTURE_S = 300  # a timestamp may run this far ahead of the server's clock (clock skew), no further
MAX_EVENT_ID_LEN = 128
MAX_ATTEMPTS = 12  # compare-and-set rounds for users other requests keep changing
BACKOFF_S = 0.002  # the first retry waits up to this, doubling up to BACKOFF_MAX_S
BACKOFF_MAX_S = 0.1
RATING_MIN, RATING_MAX = 1, 5
MAX_ID = 2**31 - 1  # ids are stored as int32 (the window, the filter)


# what accepted events change; the Feast rows follow the Redis state within the worker's push interval
UPDATED = [
    "redis: event log, seen filter, recent items, genre terms, event count (and a folded-in vector for a new user)",
    "feast: the user's features (pushed by the event worker)",
]


@dataclass(frozen=True)
class Event:
    userid: int
    itemid: int
    rating: int
    timestamp: int  # unix seconds
    event_id: str

    @property
    def label(self) -> int:
        """Implicit feedback, as offline: a click is a rating above CLICK_RATING_THRESHOLD."""
        return int(self.rating > CLICK_RATING_THRESHOLD)


@dataclass
class Applied:
    """What one request changed."""

    accepted: int = 0  # new events logged and applied
    duplicates: int = 0  # events whose event_id was already applied (nothing changed)
    users: list[int] = field(default_factory=list)  # users whose state changed
    new_users: list[int] = field(default_factory=list)  # of those, users Redis did not hold before
    event_ids: list[str] = field(default_factory=list)  # ids of the accepted events (generated when not given)
    folded: list[int] = field(default_factory=list)  # users without a vector who got one folded in

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "users": self.users,
            "new_users": self.new_users,
            "event_ids": self.event_ids,
            "folded": self.folded,
            "updated": UPDATED if self.accepted else [],
        }


# -- parsing -------------------------------------------------------------------------------------
def _integer(raw: dict, name: str, where: str, low: int, high: int | None = None) -> int:
    return checked_int(raw[name], f"{where}{name}", low, high)


def parse_events(body: object, is_item: Callable[[int], bool], now: float | None = None) -> list[Event]:
    """Validated events from a JSON body (one object, or a list of at most :data:`MAX_EVENTS`).

    ``is_item(itemid)`` says whether the catalogue holds the item. Errors name the field, as
    ``events[i].field`` in a list; the first error rejects the whole request."""
    now = time.time() if now is None else now
    if isinstance(body, dict):
        raws, prefix = [body], ""
    elif isinstance(body, list):
        if not body:
            raise BadRequest("events", "is empty; send at least one event")
        if len(body) > MAX_EVENTS:
            raise BadRequest("events", f"has {len(body)} events; send at most {MAX_EVENTS} per request")
        raws, prefix = body, "events"
    else:
        raise BadRequest("body", 'must be an event object like {"userid": 1, "itemid": 2, "rating": 5} or a list')
    events = []
    for i, raw in enumerate(raws):
        where = f"{prefix}[{i}]." if prefix else ""
        if not isinstance(raw, dict):
            raise BadRequest(f"{prefix}[{i}]", "must be an event object")
        for name in ("userid", "itemid", "rating"):
            if name not in raw:
                raise BadRequest(f"{where}{name}", "is required")
        userid = _integer(raw, "userid", where, 1, MAX_ID)
        itemid = _integer(raw, "itemid", where, 1, MAX_ID)
        if not is_item(itemid):
            raise BadRequest(f"{where}itemid", f"item {itemid} is not in the catalogue")
        rating = _integer(raw, "rating", where, RATING_MIN, RATING_MAX)
        if raw.get("timestamp") is None:
            timestamp = int(now)
        else:
            timestamp = _integer(raw, "timestamp", where, 0)
            if timestamp > now + MAX_FUTURE_S:
                raise BadRequest(
                    f"{where}timestamp", f"is {timestamp - int(now)} s in the future (at most {MAX_FUTURE_S})"
                )
        event_id = raw.get("event_id")
        if event_id is None:
            event_id = uuid.uuid4().hex
        elif not isinstance(event_id, str) or not 1 <= len(event_id) <= MAX_EVENT_ID_LEN:
            raise BadRequest(f"{where}event_id", f"must be a string of 1 to {MAX_EVENT_ID_LEN} characters")
        events.append(Event(userid, itemid, rating, timestamp, event_id))
    return events


# -- applying ------------------------------------------------------------------------------------
def _frame(events: list[Event]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            USERID: np.array([e.userid for e in events], dtype=np.int64),
            ITEMID: np.array([e.itemid for e in events], dtype=np.int32),
            LABEL: np.array([e.label for e in events], dtype=np.int8),
            TS: np.array([e.timestamp for e in events], dtype=np.int64),
        }
    )


def apply_events(client: redis.Redis, events: list[Event], genres: np.ndarray) -> Applied:
    """Log and apply ``events`` (see the module docstring); idempotent per event_id, atomic per user."""
    applied = Applied()
    pending: list[Event] = []
    ids: set[str] = set()
    for e in events:  # a repeat within this request counts as a duplicate
        if e.event_id in ids:
            applied.duplicates += 1
        else:
            ids.add(e.event_id)
            pending.append(e)
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (attempt - 1))))
        known = client.mget([redis_store.event_id_key(e.event_id) for e in pending]) if pending else []
        fresh = [e for e, hit in zip(pending, known, strict=True) if not hit]
        applied.duplicates += len(pending) - len(fresh)
        if not fresh:
            break
        users = sorted({e.userid for e in fresh})
        stored = redis_store.read_users(client, users)
        states = states_after(
            {u: s.window for u, s in stored.items() if s is not None},
            _frame(fresh),
            genres,
            {u: s.seen for u, s in stored.items() if s is not None},
        )
        # a user without a trained vector gets one folded in from every item they picked (any rating:
        # the retrieval ALS's interactions), again at each event until the next offline load; none
        # until the loader wrote the item vectors
        vectorless = [u for u, s in stored.items() if s is None or not s.vector.size or s.folded]
        picked = [states[u].seen for u in vectorless]
        fold = redis_store.read_fold_in(client, np.concatenate(picked)) if picked else None
        vectors = {u: v for u in vectorless if fold is not None and (v := fold.vector_for(states[u].seen)) is not None}
        by_user: dict[int, list[Event]] = {u: [] for u in users}
        for e in fresh:
            by_user[e.userid].append(e)
        pipe = client.pipeline(transaction=False)
        for u in users:
            state, vector = states[u], vectors.get(u)
            before = stored[u]
            n_events = (before.n_events if before else 0) + len(by_user[u])
            fields = redis_store.encode_user(
                state.terms,
                vector,
                state.seen,
                state.recent,
                state.window,
                folded=vector is not None,
                n_events=n_events,
            )
            redis_store.apply_user_events(pipe, u, before.version if before else 0, fields, by_user[u])
        done = dict(zip(users, pipe.execute(), strict=True))
        for u in users:
            if done[u]:
                applied.accepted += len(by_user[u])
                applied.users.append(u)
                applied.event_ids += [e.event_id for e in by_user[u]]
                applied.new_users += [u] if stored[u] is None else []
                applied.folded += [u] if u in vectors else []
        pending = [e for e in fresh if not done[e.userid]]  # users changed meanwhile: read them again
        if not pending:
            break
    else:
        raise redis.WatchError(
            f"events: {len(pending)} events of users written concurrently by other requests were not applied after "
            f"{MAX_ATTEMPTS} attempts ({applied.accepted} others were); retry with the same event_ids"
        )
    applied.users.sort()
    applied.new_users.sort()
    applied.folded.sort()
    return applied
