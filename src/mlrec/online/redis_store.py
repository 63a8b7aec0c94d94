"""Recall inputs in Redis: one hash per user, the item-to-item neighbour lists, and the popular list.

Layout (a request makes two round trips: ``HGETALL user<id>`` + ``HGETALL popular`` pipelined, then
one pipelined ``HMGET nbr:<channel>`` per item-to-item channel for the user's recent items):

=================  ============  ==========================================================================
key                field         encoding
=================  ============  ==========================================================================
``user<id>``       term          comma-joined genre codes, e.g. ``"1,5,8"`` (readable in ``redis-cli``; may be empty)
``user<id>``       vector        16 little-endian float32 (64 bytes) — ``np.frombuffer`` decodes it with no parsing
``user<id>``       filter        little-endian int32 item ids the user has already seen offline
``user<id>``       recent        little-endian int32 ids of the user's most recent offline items, most recent first
``nbr:<channel>``  ``<itemid>``  the item's neighbours in an item-to-item channel (``ease``, ``seq``): n
                                 little-endian int32 ids then their n float32 weights, best first (the offline
                                 table's zero padding is not stored; an item without neighbours has no field)
``popular``        items         little-endian int32 ids of the popularity channel, best first
``popular``        scores        their float32 scores
=================  ============  ==========================================================================

The seed stored the vector and filter as comma-joined text; the binary form is about 4x
smaller for the filter and decodes in microseconds instead of splitting thousands of strings.
One hash per neighbour channel (not one key per item) lets the server fetch every recent item's
list with a single ``HMGET`` and lets the loader replace a whole table atomically: it is written
under a temporary key, then renamed over the served one. ``popular`` is also the answer for users
the system has never seen.

This module is the one definition of that layout: the loader, the server and the evaluation all
read and write Redis through it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.typing import EncodableT, FieldT
from tqdm import tqdm

from mlrec.offline.channels import NEIGHBOUR_CHANNELS

USER_PREFIX = "user"
POPULAR_KEY = "popular"
NEIGHBOUR_PREFIX = "nbr:"
F_TERM, F_VECTOR, F_FILTER, F_RECENT = "term", "vector", "filter", "recent"
F_POPULAR_ITEMS, F_POPULAR_SCORES = "items", "scores"


@dataclass(frozen=True)
class UserRecall:
    userid: int
    terms: list[int]
    vector: np.ndarray  # float32 (16,)
    seen: np.ndarray  # int32 item ids
    recent: np.ndarray  # int32 item ids, most recent first


def connect(settings, timeout: float | None = None) -> redis.Redis:
    """A client for ``settings``' Redis. No client-side retries: a dead Redis fails within one
    timeout instead of after redis-py's default backoff loop."""
    timeout = timeout or settings.timeout_s
    return redis.Redis(
        host=settings.host,
        port=settings.redis_port,
        db=settings.redis_db,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def user_key(userid: int) -> str:
    return f"{USER_PREFIX}{userid}"


def neighbour_key(channel: str) -> str:
    return f"{NEIGHBOUR_PREFIX}{channel}"


# -- users -------------------------------------------------------------------------------------
def encode_user(
    terms: Sequence[int] | np.ndarray,
    vector: np.ndarray,
    seen: Sequence[int] | np.ndarray,
    recent: Sequence[int] | np.ndarray,
) -> dict[FieldT, EncodableT]:
    """The hash fields of one user (``str`` field names, ``bytes`` values)."""
    return {
        F_TERM: ",".join(str(int(t)) for t in terms).encode(),
        F_VECTOR: np.asarray(vector, dtype="<f4").tobytes(),
        F_FILTER: np.asarray(seen, dtype="<i4").tobytes(),
        F_RECENT: np.asarray(recent, dtype="<i4").tobytes(),
    }


def decode_user(userid: int, fields: Mapping[bytes, bytes]) -> UserRecall:
    term = fields.get(F_TERM.encode(), b"").decode()
    return UserRecall(
        userid=userid,
        terms=[int(t) for t in term.split(",") if t],
        vector=np.frombuffer(fields.get(F_VECTOR.encode(), b""), dtype="<f4"),
        seen=np.frombuffer(fields.get(F_FILTER.encode(), b""), dtype="<i4"),
        recent=np.frombuffer(fields.get(F_RECENT.encode(), b""), dtype="<i4"),
    )


def write_users(
    client: redis.Redis,
    terms: Mapping[int, Sequence[int] | np.ndarray],
    vectors: np.ndarray,
    seen: Mapping[int, np.ndarray],
    recent: Mapping[int, np.ndarray],
    batch: int = 1000,
) -> int:
    """Write every user that has offline events; pipelined, ``batch`` users per round trip.

    Each hash is replaced whole (DEL + HSET in one MULTI), so a re-run never leaves a stale field.
    """
    users = sorted(seen)
    none = np.zeros(0, np.int32)
    pipe = client.pipeline(transaction=True)
    for n, uid in enumerate(tqdm(users, desc="redis users", unit="user", disable=None), start=1):
        pipe.delete(user_key(uid))
        pipe.hset(
            user_key(uid), mapping=encode_user(terms.get(uid, []), vectors[uid], seen[uid], recent.get(uid, none))
        )
        if n % batch == 0:
            pipe.execute()
    pipe.execute()
    return len(users)


def read_user(client: redis.Redis, userid: int) -> UserRecall | None:
    """The user's recall inputs, or None for a user the system has never seen."""
    fields = _hgetall(client, user_key(userid))
    return decode_user(userid, fields) if fields else None


def read_user_and_popular(client: redis.Redis, userid: int) -> tuple[UserRecall | None, tuple[np.ndarray, np.ndarray]]:
    """:func:`read_user` and :func:`read_popular` in one round trip (the server needs both for every request)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(user_key(userid))
    pipe.hgetall(POPULAR_KEY)
    user, popular = cast(list[dict[bytes, bytes]], pipe.execute())
    return (decode_user(userid, user) if user else None), _decode_popular(popular)


# -- the popular list --------------------------------------------------------------------------
def write_popular(client: redis.Redis, itemids: np.ndarray, scores: np.ndarray) -> None:
    """Replace the popular list (DEL + HSET in one MULTI)."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(POPULAR_KEY)
    pipe.hset(
        POPULAR_KEY,
        mapping={
            F_POPULAR_ITEMS: np.asarray(itemids, dtype="<i4").tobytes(),
            F_POPULAR_SCORES: np.asarray(scores, dtype="<f4").tobytes(),
        },
    )
    pipe.execute()


def read_popular(client: redis.Redis) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, scores), most popular first; empty arrays if never loaded."""
    return _decode_popular(_hgetall(client, POPULAR_KEY))


def _decode_popular(raw: Mapping[bytes, bytes]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.frombuffer(raw.get(F_POPULAR_ITEMS.encode(), b""), dtype="<i4"),
        np.frombuffer(raw.get(F_POPULAR_SCORES.encode(), b""), dtype="<f4"),
    )


# -- item-to-item neighbour lists --------------------------------------------------------------
def encode_neighbours(ids: np.ndarray, weights: np.ndarray) -> bytes:
    """One item's neighbour row -> int32 ids then float32 weights; padding (id 0) is dropped."""
    ids, weights = np.asarray(ids).reshape(-1), np.asarray(weights).reshape(-1)
    keep = ids != 0
    return np.asarray(ids[keep], dtype="<i4").tobytes() + np.asarray(weights[keep], dtype="<f4").tobytes()


def decode_neighbours(values: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
    """Encoded rows (None: an item without a list) -> (ids int32, weights float32), both
    ``[len(values), widest row]``, short rows padded with id 0 / weight 0 like the offline table."""
    rows = [v or b"" for v in values]
    width = max((len(v) // 8 for v in rows), default=0)
    ids = np.zeros((len(rows), width), dtype=np.int32)
    weights = np.zeros((len(rows), width), dtype=np.float32)
    for r, v in enumerate(rows):
        n = len(v) // 8
        ids[r, :n] = np.frombuffer(v, dtype="<i4", count=n)
        weights[r, :n] = np.frombuffer(v, dtype="<f4", count=n, offset=4 * n)
    return ids, weights


def write_neighbours(client: redis.Redis, channel: str, ids: np.ndarray, weights: np.ndarray, batch: int = 1000) -> int:
    """Replace channel ``channel``'s table (row = item id) with ``(ids, weights)``; returns the items written.

    The rows go to a temporary key (pipelined, ``batch`` items per HSET) which is then renamed over
    the served key (``RENAME``), so a reader sees the old table or the new one, never a mix. An item with
    no neighbour gets no field (read back as an empty row).
    """
    ids, weights = np.asarray(ids), np.asarray(weights)
    if ids.shape != weights.shape or ids.ndim != 2:
        raise ValueError(f"neighbour ids {ids.shape} and weights {weights.shape} must be the same 2-d shape")
    rows = np.flatnonzero((ids != 0).any(axis=1))
    key = neighbour_key(channel)
    tmp = f"{key}:loading:{uuid.uuid4().hex[:8]}"
    pipe = client.pipeline(transaction=False)
    try:
        for lo in range(0, len(rows), batch):
            chunk = rows[lo : lo + batch]
            pipe.hset(tmp, mapping={str(int(i)): encode_neighbours(ids[i], weights[i]) for i in chunk})
        pipe.execute()
        if len(rows):
            client.rename(tmp, key)
        else:
            client.delete(key)
    except Exception:
        client.delete(tmp)
        raise
    return len(rows)


def read_neighbours(
    client: redis.Redis, channel: str, itemids: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, weights)`` of each item in ``itemids`` (row r = itemids[r]; unknown item -> empty row),
    one ``HMGET``."""
    itemids = np.asarray(itemids, dtype=np.int64)
    if len(itemids) == 0:
        return decode_neighbours([])
    return decode_neighbours(_hmget(client.hmget(neighbour_key(channel), [str(i) for i in itemids.tolist()])))


def read_neighbour_channels(
    client: redis.Redis, itemids: Sequence[int] | np.ndarray, channels: Sequence[str] = NEIGHBOUR_CHANNELS
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`read_neighbours` of every channel for the same items, in one pipelined round trip."""
    itemids = np.asarray(itemids, dtype=np.int64)
    if len(itemids) == 0:
        return {c: decode_neighbours([]) for c in channels}
    fields = [str(i) for i in itemids.tolist()]
    pipe = client.pipeline(transaction=False)
    for channel in channels:
        pipe.hmget(neighbour_key(channel), fields)
    return {c: decode_neighbours(_hmget(v)) for c, v in zip(channels, pipe.execute(), strict=True)}


def _hgetall(client: redis.Redis, key: str) -> dict[bytes, bytes]:
    """``HGETALL``; the clients of :func:`connect` never decode responses, so fields and values are bytes."""
    return cast(dict[bytes, bytes], client.hgetall(key))


def _hmget(values) -> list[bytes | None]:
    return cast(list[bytes | None], values)
