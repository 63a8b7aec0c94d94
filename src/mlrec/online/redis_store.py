"""Recall inputs in Redis: one hash per user, the item-to-item neighbour lists, and the popular list.

Layout (a request makes two round trips: ``HGETALL user<id>`` + ``HGETALL popular`` pipelined, then
one pipelined ``HMGET nbr:<channel>`` per item-to-item channel for the user's recent items):

=================  ============  ==========================================================================
key                field         encoding
=================  ============  ==========================================================================
``user<id>``       term          comma-joined genre codes, e.g. ``"1,5,8"`` (readable in ``redis-cli``; may be empty)
``user<id>``       vector        16 little-endian float32 (64 bytes) — ``np.frombuffer`` decodes it with no parsing
``user<id>``       v             how many event batches changed the hash since the loader wrote it (absent =
                                 0): the compare-and-set version of ``POST /ml/event``
``user<id>``       folded        ``1`` when the vector was folded in from events (refolded at each event until
                                 the next offline load writes a trained one); absent for a trained vector
``user<id>``       filter        little-endian int32 item ids the user has already seen offline
``user<id>``       recent        little-endian int32 ids of the user's most recent items, most recent first
``user<id>``       n             how many events the user has had, offline and since (text): the activity
                                 feature of the user's Feast row, which ``POST /ml/event`` recomputes
``user<id>``       window        the user's latest events (:data:`~mlrec.offline.user_state.WINDOW_DTYPE`, 13
                                 bytes each: int32 item, int8 label, int64 time), oldest first: what an event
                                 needs to recompute the terms and recent items (``POST /ml/event``)
``itemvec``        ``<itemid>``  the item's retrieval vector (16 little-endian float32), as Elasticsearch holds it
``als``            gram          the item vectors' Gram matrix ``Y^T Y`` (float32, row-major), and
``als``            reg, alpha    the retrieval ALS's regularization and alpha (text): a new user's vector
                                 is folded in from these (:func:`mlrec.models.als.fold_in`)
``events``         (stream)      every event ``POST /ml/event`` accepted: userid, itemid, rating, timestamp,
                                 event_id; kept in Redis's append-only file, read back by the next offline run
``evt:<event_id>`` (string)      the stream entry id of an applied event, kept ``EVENT_ID_TTL_S``: a repeated
                                 event_id is not applied twice
``evq``            (list)        requests of ``POST /ml/event`` waiting for the event worker: JSON
                                 ``{"request", "events": [[userid, itemid, rating, timestamp, event_id]]}``
``evr:<request>``  (list)        the worker's JSON answer to one request (what was applied), kept a minute
``evw:alive``      (string)      a running event worker's pid, expiring ``HEARTBEAT_TTL_S`` after its last step
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
from dataclasses import dataclass, field
from typing import Protocol, cast

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.typing import EncodableT, FieldT
from tqdm import tqdm

from mlrec.offline.channels import NEIGHBOUR_CHANNELS
from mlrec.offline.user_state import WINDOW_DTYPE

USER_PREFIX = "user"
ITEM_VECTORS_KEY = "itemvec"
ALS_KEY = "als"
EVENTS_STREAM = "events"
EVENT_ID_PREFIX = "evt:"
EVENT_ID_TTL_S = 7 * 24 * 3600  # how long a retried event_id is recognised
EVENT_QUEUE = "evq"  # POST /ml/event's requests waiting for the event worker (mlrec.online.event_worker)
EVENT_REPLY_PREFIX = "evr:"  # evr:<request id>: the worker's answer to one request
EVENT_WORKER_HEARTBEAT = "evw:alive"  # the pid of a running event worker, refreshed every second
HEARTBEAT_TTL_S = 3  # no refresh for this long: no worker is running
POPULAR_KEY = "popular"
NEIGHBOUR_PREFIX = "nbr:"
F_TERM, F_VECTOR, F_FILTER, F_RECENT, F_WINDOW = "term", "vector", "filter", "recent", "window"
F_FOLDED = "folded"
F_EVENTS = "n"  # how many events the user has (offline and applied since): the ranker's activity feature
F_VERSION = "v"  # bumped by every applied event (absent = 0): the compare-and-set of POST /ml/event
F_POPULAR_ITEMS, F_POPULAR_SCORES = "items", "scores"


@dataclass(frozen=True)
class UserRecall:
    userid: int
    terms: list[int]
    vector: np.ndarray  # float32 (16,)
    seen: np.ndarray  # int32 item ids
    recent: np.ndarray  # int32 item ids, most recent first
    # WINDOW_DTYPE, the latest events, oldest first (empty if never loaded)
    window: np.ndarray = field(default_factory=lambda: np.zeros(0, WINDOW_DTYPE))
    folded: bool = False  # the vector was folded in from events, not trained offline
    n_events: int = 0  # every event the user has had (offline and applied since)
    version: int = 0  # how many event batches changed this hash since it was loaded


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


def event_id_key(event_id: str) -> str:
    return f"{EVENT_ID_PREFIX}{event_id}"


def neighbour_key(channel: str) -> str:
    return f"{NEIGHBOUR_PREFIX}{channel}"


# -- users -------------------------------------------------------------------------------------
def encode_user(
    terms: Sequence[int] | np.ndarray,
    vector: np.ndarray | None,
    seen: Sequence[int] | np.ndarray,
    recent: Sequence[int] | np.ndarray,
    window: np.ndarray | None = None,
    folded: bool = False,
    n_events: int | None = None,
) -> dict[FieldT, EncodableT]:
    """The hash fields of one user (``str`` field names, ``bytes`` values); no vector field when
    ``vector`` is None (left as stored, or none yet), and the ``folded`` mark with a folded-in one."""
    window = np.zeros(0, WINDOW_DTYPE) if window is None else window
    fields: dict[FieldT, EncodableT] = {
        F_TERM: ",".join(str(int(t)) for t in terms).encode(),
        F_FILTER: np.asarray(seen, dtype="<i4").tobytes(),
        F_RECENT: np.asarray(recent, dtype="<i4").tobytes(),
        F_WINDOW: np.asarray(window, dtype=WINDOW_DTYPE).tobytes(),
    }
    if n_events is not None:
        fields[F_EVENTS] = str(int(n_events)).encode()
    if vector is not None:
        fields[F_VECTOR] = np.asarray(vector, dtype="<f4").tobytes()
        if folded:
            fields[F_FOLDED] = b"1"
    return fields


def decode_user(userid: int, fields: Mapping[bytes, bytes]) -> UserRecall:
    term = fields.get(F_TERM.encode(), b"").decode()
    return UserRecall(
        userid=userid,
        terms=[int(t) for t in term.split(",") if t],
        vector=np.frombuffer(fields.get(F_VECTOR.encode(), b""), dtype="<f4"),
        seen=np.frombuffer(fields.get(F_FILTER.encode(), b""), dtype="<i4"),
        recent=np.frombuffer(fields.get(F_RECENT.encode(), b""), dtype="<i4"),
        window=np.frombuffer(fields.get(F_WINDOW.encode(), b""), dtype=WINDOW_DTYPE),
        folded=fields.get(F_FOLDED.encode()) == b"1",
        n_events=int(fields.get(F_EVENTS.encode(), b"0")),
        version=int(fields.get(F_VERSION.encode(), b"0")),
    )


def write_users(
    client: redis.Redis,
    terms: Mapping[int, Sequence[int] | np.ndarray],
    vectors: np.ndarray,
    seen: Mapping[int, np.ndarray],
    recent: Mapping[int, np.ndarray],
    windows: Mapping[int, np.ndarray] | None = None,
    n_events: Mapping[int, int] | None = None,
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
            user_key(uid),
            mapping=encode_user(
                terms.get(uid, []),
                vectors[uid],
                seen[uid],
                recent.get(uid, none),
                (windows or {}).get(uid),
                n_events=(n_events or {}).get(uid, 0),
            ),
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


# -- the retrieval model's item side (a new user's vector is folded in from it) --------------------
def write_fold_in(
    client: redis.Redis, item_vectors: np.ndarray, params: Mapping[str, float], batch: int = 1000
) -> None:
    """Replace the item vectors (row = item id; all-zero rows, ids without an item, are skipped) and the
    ALS constants. The vectors go to a temporary key renamed over the served one, as the neighbours do."""
    vectors = np.asarray(item_vectors, dtype="<f4")
    rows = np.flatnonzero(vectors.any(axis=1))
    tmp = f"{ITEM_VECTORS_KEY}:loading:{uuid.uuid4().hex[:8]}"
    pipe = client.pipeline(transaction=False)
    for lo in range(0, len(rows), batch):
        pipe.hset(tmp, mapping={str(int(i)): vectors[i].tobytes() for i in rows[lo : lo + batch]})
    pipe.execute()
    pipe = client.pipeline(transaction=True)
    if len(rows):
        pipe.rename(tmp, ITEM_VECTORS_KEY)
    else:
        pipe.delete(ITEM_VECTORS_KEY)
    gram = vectors[rows].astype(np.float64).T @ vectors[rows].astype(np.float64)
    pipe.delete(ALS_KEY)
    pipe.hset(
        ALS_KEY,
        mapping={
            "gram": gram.astype("<f4").tobytes(),
            "reg": str(float(params["regularization"])),
            "alpha": str(float(params["alpha"])),
        },
    )
    pipe.execute()


@dataclass(frozen=True)
class FoldIn:
    """What a new user's vector is folded in from: some items' vectors and the ALS constants."""

    ids: np.ndarray  # int64 item ids that have a vector
    vectors: np.ndarray  # float32 [len(ids), factors]
    gram: np.ndarray  # float32 [factors, factors], Y^T Y over every item
    regularization: float
    alpha: float

    def vector_for(self, items: np.ndarray) -> np.ndarray | None:
        """The folded-in vector of a user who picked ``items``; None if none of them has a vector."""
        from mlrec.models.als import fold_in

        rows = np.isin(self.ids, items)
        return fold_in(self.vectors[rows], self.gram, self.regularization, self.alpha) if rows.any() else None


def read_fold_in(client: redis.Redis, itemids: Sequence[int] | np.ndarray) -> FoldIn | None:
    """The vectors of ``itemids`` (those that have one) and the ALS constants, in one round trip;
    None when the loader never wrote them."""
    ids = np.unique(np.asarray(itemids, dtype=np.int64))
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(ALS_KEY)
    pipe.hmget(ITEM_VECTORS_KEY, [str(i) for i in ids.tolist()] or ["0"])
    raw, values = pipe.execute()
    if not raw:
        return None
    gram = np.frombuffer(raw[b"gram"], dtype="<f4")
    dim = round(len(gram) ** 0.5)
    values = values[: len(ids)]
    has = np.array([v is not None for v in values], dtype=bool)
    vectors = np.stack([np.frombuffer(v, dtype="<f4") for v in values if v]) if has.any() else np.zeros((0, dim))
    return FoldIn(
        ids[has], vectors.astype(np.float32), gram.reshape(dim, dim), float(raw[b"reg"]), float(raw[b"alpha"])
    )


def read_users(client: redis.Redis, userids: Sequence[int]) -> dict[int, UserRecall | None]:
    """:func:`read_user` of several users in one round trip."""
    pipe = client.pipeline(transaction=False)
    for u in userids:
        pipe.hgetall(user_key(u))
    return {u: (decode_user(u, f) if f else None) for u, f in zip(userids, pipe.execute(), strict=True)}


# -- events (POST /ml/event) -----------------------------------------------------------------------
# Apply one user's events atomically, if nothing changed since they were read (compare-and-set):
# the user's version (field F_VERSION, absent = 0) is the one expected and none of the event ids is
# applied yet. Then: log each event (XADD), mark its id (SET ... EX), write the user's fields, bump the
# version. Returns 1, or 0 (nothing written) for the caller to read and compute that user again.
# One user per call, so concurrent requests conflict only on a user they share, never on a batch.
_APPLY_USER = """
local version = redis.call('HGET', KEYS[2], ARGV[1]) or '0'
if version ~= ARGV[2] then return 0 end
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
local n_fields = tonumber(ARGV[4])
local at = 5 + 2 * n_fields
for i = 3, #KEYS do
  redis.call('XADD', KEYS[1], '*', 'userid', ARGV[at], 'itemid', ARGV[at + 1], 'rating', ARGV[at + 2],
             'timestamp', ARGV[at + 3], 'event_id', ARGV[at + 4])
  redis.call('SET', KEYS[i], 1, 'EX', ARGV[3])
  at = at + 5
end
if n_fields > 0 then redis.call('HSET', KEYS[2], unpack(ARGV, 5, 4 + 2 * n_fields)) end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return 1
"""


class LoggedEvent(Protocol):
    """What the log keeps of an event (:class:`mlrec.online.events.Event` is one)."""

    @property
    def userid(self) -> int: ...
    @property
    def itemid(self) -> int: ...
    @property
    def rating(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def event_id(self) -> str: ...


def apply_user_events(
    pipe: redis.client.Pipeline,
    userid: int,
    version: int,
    fields: Mapping[FieldT, EncodableT],
    events: Sequence[LoggedEvent],
) -> None:
    """Queue the compare-and-set of one user's ``events`` and new hash ``fields`` (see ``_APPLY_USER``);
    its reply is 1 if applied, 0 if the user or an event id changed since ``version`` was read."""
    args: list[EncodableT] = [F_VERSION, str(version), EVENT_ID_TTL_S, len(fields)]
    for name, value in fields.items():
        args += [name, value]
    for e in events:
        args += [e.userid, e.itemid, e.rating, e.timestamp, e.event_id]
    keys = [EVENTS_STREAM, user_key(userid), *(event_id_key(e.event_id) for e in events)]
    # EVALSHA: the pipeline sends the script's text once (SCRIPT LOAD when Redis lacks it), not per user
    pipe.register_script(_APPLY_USER)(keys=keys, args=args, client=pipe)


def forget_events(client: redis.Redis, prefix: str, batch: int = 5000) -> int:
    """Delete the logged events whose event_id starts with ``prefix`` (a benchmark's or a replay's own),
    and their id keys; returns the log entries removed. Nothing else in the log is touched."""
    removed, start = 0, "-"
    for key in client.scan_iter(match=f"{EVENT_ID_PREFIX}{prefix}*", count=1000):
        client.delete(key)
    while True:
        entries = cast(list, client.xrange(EVENTS_STREAM, min=start, count=batch))
        ours = [eid for eid, fields in entries if fields.get(b"event_id", b"").startswith(prefix.encode())]
        if ours:
            removed += client.xdel(EVENTS_STREAM, *ours)
        if len(entries) < batch:
            return removed
        start = "(" + entries[-1][0].decode()


def read_events(client: redis.Redis, count: int | None = None) -> list[dict[str, int | str]]:
    """The logged events, oldest first (``count``: only the first so many)."""
    entries = cast(list, client.xrange(EVENTS_STREAM, count=count))
    out: list[dict[str, int | str]] = []
    for _, raw in entries:
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        out.append({k: (v if k == "event_id" else int(v)) for k, v in fields.items()})
    return out


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
