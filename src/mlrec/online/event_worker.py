"""The event worker: applies the events ``POST /ml/event`` hands it, many requests at a time, and pushes
the changed users' features to Feast.

Why a process of its own: applying events is pandas work (the offline functions, so that an event
updates exactly what the next offline run computes), about 16 ms for a 10-event request. Done in the
server's processes it held the GIL beside ``/ml/rec``'s threads: at 500 events/s, ``/ml/rec``'s p99
rose 65 % (155 % with 100-event requests, whose longer holds hurt more). Here it runs at a lower CPU
priority (``nice``), and applies every waiting request in one call (group commit), which costs about
as much as applying one.

The protocol, both sides of it in this module (keys in :mod:`mlrec.online.redis_store`):

1. the server checks a request's events, ``RPUSH``-es them as one JSON entry on
   :data:`~mlrec.online.redis_store.EVENT_QUEUE` and waits (``BLPOP``) on the request's reply key;
2. the worker takes the oldest waiting request and up to :data:`MAX_REQUESTS` - 1 more, applies all
   their events with one :func:`mlrec.online.events.apply_events` (logged, idempotent, atomic per user),
   and answers each request with its part of the result;
3. at most every ``feature_push_interval_s`` it recomputes the Feast row of every user changed since
   (coalesced: a user who clicked ten times is pushed once), from their state in Redis, with the
   functions the offline feature step uses, and pushes them (``POST /push``). A Feast that is down
   delays the rows, never the events: they are pushed when it answers again.

A request the worker never took is taken back off the queue when the server stops waiting: a 503
that applied nothing. One it took but did not answer (it died mid-batch) is a 503 too, whose events
may be applied; retrying with the same ``event_id``\\ s is safe either way.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import redis

from mlrec.core import io
from mlrec.core.constants import USERID
from mlrec.core.contracts import FEAST_USER_PUSH
from mlrec.core.io import ArtifactError
from mlrec.core.paths import FEATURES_SCRIPT, TERMS_SCRIPT, Paths
from mlrec.core.settings import Settings
from mlrec.offline.candidates import user_dense_features
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.offline.pit import genre_matrix
from mlrec.offline.rank_features import scaled_table
from mlrec.offline.user_state import window_frame
from mlrec.online import redis_store
from mlrec.online.errors import EventsNotApplied
from mlrec.online.events import Applied, Event, apply_events
from mlrec.online.feast_store import FeastClient, FeastError

log = logging.getLogger(__name__)

MAX_REQUESTS = 200  # requests applied in one call (at most 200,000 events)
REPLY_TTL_S = 60  # an answer nobody waits for any more is dropped after this
WAIT_SLICE_S = 0.5  # one BLPOP; below the Redis client's socket timeout
RETRY_PUSH_S = 2.0  # after a failed push, the rows wait this long before the next try
PUSH_CHUNK = 100  # rows per POST /push: the feature server answers reads between two chunks


# -- the server's side ---------------------------------------------------------------------------
def submit(client: redis.Redis, events: list[Event], wait_s: float) -> Applied:
    """Queue ``events`` for the worker and wait (at most ``wait_s``) for what it applied."""
    request = uuid.uuid4().hex
    entry = json.dumps(
        {"request": request, "events": [[e.userid, e.itemid, e.rating, e.timestamp, e.event_id] for e in events]}
    )
    client.rpush(redis_store.EVENT_QUEUE, entry)
    reply_key = redis_store.EVENT_REPLY_PREFIX + request
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        got = client.blpop([reply_key], timeout=max(0.01, min(WAIT_SLICE_S, left)))
        if got is not None:
            answer = json.loads(got[1])
            if "error" in answer:
                raise EventsNotApplied(answer["error"], "retry with the same event_ids (applying is idempotent)")
            return Applied(**answer)
    if client.lrem(redis_store.EVENT_QUEUE, 1, entry):
        raise EventsNotApplied(
            f"no event worker took the request within {wait_s:g} s; nothing was applied",
            "start the server with online/main/s1_server.py (it starts the worker) or run "
            "online/main/s5_event_worker.py beside it, then retry",
        )
    raise EventsNotApplied(
        f"the event worker took the request but did not answer within {wait_s:g} s",
        "retry with the same event_ids (applying is idempotent); see the server log for the worker's error",
    )


# -- the worker's side ---------------------------------------------------------------------------
def split(applied: Applied, requests: list[tuple[str, list[Event]]]) -> dict[str, Applied]:
    """Each request's part of one :func:`apply_events` over all of them (an id repeated across requests
    counts for the first request that has it; the rest see a duplicate)."""
    accepted, claimed = set(applied.event_ids), set()
    new_users, folded = set(applied.new_users), set(applied.folded)
    parts = {}
    for request, events in requests:
        ids = [e.event_id for e in events if e.event_id in accepted and e.event_id not in claimed]
        claimed.update(ids)
        mine = set(ids)
        users = sorted({e.userid for e in events if e.event_id in mine})
        parts[request] = Applied(
            accepted=len(ids),
            duplicates=len(events) - len(ids),
            users=users,
            new_users=[u for u in users if u in new_users],
            event_ids=ids,
            folded=[u for u in users if u in folded],
        )
    return parts


@dataclass(frozen=True)
class Catalogue:
    """What the worker reads from the offline artifacts: the item genres (terms, genre counts), the
    feature meta and the offline user table (the users' static columns). Reloaded when a file changes."""

    genres: np.ndarray
    meta: FeatureMeta | None  # None before the feature step ran: events apply, no rows are pushed
    static: pd.DataFrame  # userid -> the user features not computed from events (raw), offline users only
    stamp: tuple[float, ...]

    @staticmethod
    def stamp_of(paths: Paths) -> tuple[float, ...]:
        return tuple(p.stat().st_mtime if p.is_file() else 0.0 for p in Catalogue.files(paths))

    @staticmethod
    def files(paths: Paths) -> tuple[Path, Path, Path]:
        return paths.item_genres, paths.feature_meta, paths.user_features

    @classmethod
    def load(cls, paths: Paths) -> Catalogue:
        stamp = cls.stamp_of(paths)
        genres = genre_matrix(io.read_id_lists(paths.item_genres, TERMS_SCRIPT))
        if not (paths.feature_meta.is_file() and paths.user_features.is_file()):
            return cls(genres, None, pd.DataFrame(), stamp)
        meta = FeatureMeta.load(paths.feature_meta)
        table = io.read_parquet(paths.user_features, FEATURES_SCRIPT).set_index(USERID)
        names = [f for f in meta.of_owner("user") if f.kind == "sparse_side"]
        static = pd.DataFrame({f.name: table[f.name].to_numpy(np.float64) * f.std + f.mean for f in names})
        static.index = table.index.astype(np.int64)
        return cls(genres, meta, static, stamp)

    def user_rows(self, users: dict[int, redis_store.UserRecall]) -> pd.DataFrame:
        """The Feast rows of ``users`` from their state in Redis: the genre counts of their window and
        their activity (:func:`~mlrec.offline.candidates.user_dense_features`), their static columns
        from the offline table (code 0, unknown, for a user it does not hold, as offline), scaled as in
        training (:func:`~mlrec.offline.rank_features.scaled_table`)."""
        assert self.meta is not None  # callers check
        ids = np.array(sorted(users), dtype=np.int64)
        frame = window_frame({u: users[u].window for u in ids.tolist()})
        values = user_dense_features(frame, self.genres, ids, np.array([users[u].n_events for u in ids.tolist()]))
        for name in self.static.columns:
            values[name] = self.static[name].reindex(ids).fillna(0.0).to_numpy()
        return scaled_table(self.meta, "user", USERID, ids, values)


class EventWorker:
    """One worker: :meth:`step` applies the waiting requests; :meth:`push` sends the rows that are due.

    :meth:`run` pushes from a thread of its own, so a push (hundreds of milliseconds of the feature
    server's time for hundreds of rows) never holds back the next requests' events."""

    def __init__(
        self, client: redis.Redis, paths: Paths, feast: FeastClient | None, push_interval_s: float = 0.5
    ) -> None:
        self.client, self.paths, self.feast, self.push_interval_s = client, paths, feast, push_interval_s
        self.catalogue = Catalogue.load(paths)
        self.dirty: set[int] = set()  # users whose Feast row is behind their Redis state
        self.lock = threading.Lock()  # guards dirty between the applying and the pushing thread
        self.next_push = 0.0
        self.next_beat = 0.0
        self.applied = self.pushed = 0

    def run(self, stop: Callable[[], bool], block_s: float = WAIT_SLICE_S) -> None:
        """Steps until ``stop()`` while a thread pushes the rows; then pushes what is left."""
        done = threading.Event()
        pusher = threading.Thread(target=self._push_until, args=(done,), name="feature-pusher", daemon=True)
        pusher.start()
        try:
            while not stop():
                try:
                    self.step(block_s)
                except redis.RedisError as exc:  # Redis restarting: wait for it, the queue is kept there
                    log.warning("event=worker_redis_error error=%s", exc)
                    time.sleep(1.0)
                except Exception:  # e.g. the catalogue removed mid-reload (make clean): keep going, loudly
                    log.exception("event=worker_step_failed")
                    time.sleep(1.0)
        finally:
            done.set()
            pusher.join()
        self.push(force=True)

    def _push_until(self, done: threading.Event) -> None:
        while not done.wait(min(self.push_interval_s, 0.1)):
            try:
                self.push()
            except redis.RedisError as exc:
                log.warning("event=feature_push_redis_error error=%s", exc)

    def step(self, block_s: float = WAIT_SLICE_S) -> int:
        """Apply every waiting request (waiting at most ``block_s`` for the first); returns the events applied."""
        if time.monotonic() >= self.next_beat:  # GET /healthz shows whether a worker is running
            self.client.set(redis_store.EVENT_WORKER_HEARTBEAT, os.getpid(), ex=redis_store.HEARTBEAT_TTL_S)
            self.next_beat = time.monotonic() + 1.0
        if (stamp := Catalogue.stamp_of(self.paths)) != self.catalogue.stamp:
            self.catalogue = Catalogue.load(self.paths)
            log.info("event=worker_catalogue_reloaded stamp=%s", stamp)
        first = self.client.blpop([redis_store.EVENT_QUEUE], timeout=block_s)
        if first is None:
            return 0
        more = self.client.lpop(redis_store.EVENT_QUEUE, MAX_REQUESTS - 1) or []
        return self.apply([first[1], *more])  # type: ignore[list-item]

    def apply(self, entries: list[bytes]) -> int:
        requests = []
        for entry in entries:
            raw = json.loads(entry)
            requests.append((raw["request"], [Event(*e) for e in raw["events"]]))
        try:
            applied = apply_events(self.client, [e for _, events in requests for e in events], self.catalogue.genres)
            answers = {request: asdict(part) for request, part in split(applied, requests).items()}
        except redis.WatchError as exc:
            answers = {request: {"error": str(exc)} for request, _ in requests}
            applied = Applied()
        except redis.RedisError:
            raise  # Redis is going away: run() waits for it
        except Exception as exc:  # a bug must fail these requests (503), not the worker every later one needs
            log.exception("event=apply_failed requests=%d", len(requests))
            answers = {request: {"error": f"the event worker failed: {type(exc).__name__}"} for request, _ in requests}
            applied = Applied()
        pipe = self.client.pipeline(transaction=False)
        for request, answer in answers.items():
            key = redis_store.EVENT_REPLY_PREFIX + request
            pipe.rpush(key, json.dumps(answer))
            pipe.expire(key, REPLY_TTL_S)
        pipe.execute()
        with self.lock:
            self.dirty.update(applied.users)
        self.applied += applied.accepted
        return applied.accepted

    def push(self, force: bool = False) -> int:
        """Push the changed users' Feast rows when due (or ``force``); returns the rows pushed."""
        catalogue = self.catalogue
        if not self.dirty or self.feast is None or catalogue.meta is None:
            return 0
        if not force and time.monotonic() < self.next_push:
            return 0
        with self.lock:
            users = sorted(self.dirty)
            self.dirty.clear()
        pushed = 0
        try:
            for start in range(0, len(users), PUSH_CHUNK):
                chunk = users[start : start + PUSH_CHUNK]
                stored = {u: r for u, r in redis_store.read_users(self.client, chunk).items() if r is not None}
                if stored:
                    self.feast.push(FEAST_USER_PUSH, catalogue.user_rows(stored))
                pushed = start + len(chunk)
        except (FeastError, redis.RedisError) as exc:
            log.warning("event=feature_push_failed users=%d error=%s", len(users) - pushed, exc)
            with self.lock:
                self.dirty.update(users[pushed:])  # their rows go with the next push
            self.next_push = time.monotonic() + RETRY_PUSH_S
            self.pushed += pushed
            return pushed
        self.next_push = time.monotonic() + self.push_interval_s
        self.pushed += pushed
        return pushed


def parent_gone(parent: int | None) -> Callable[[], bool]:
    """A stop condition: the process ``parent`` (the server that started the worker) is gone."""
    return lambda: parent is not None and os.getppid() != parent


def serve(
    settings: Settings, paths: Paths, stop: Callable[[], bool], wait_catalogue_s: float = 5.0
) -> EventWorker | None:
    """Run a worker until ``stop()``: waits for the offline catalogue if none is there yet (a server
    started before the first offline run), then :meth:`EventWorker.run`. Returns the worker (None if
    stopped before the catalogue came)."""
    client = redis_store.connect(settings, timeout=max(settings.timeout_s, 4 * WAIT_SLICE_S))
    feast = FeastClient(settings.feast_push_url, timeout_s=max(settings.timeout_s, 10.0))  # a push of many rows
    warned = False
    while not stop():
        try:
            worker = EventWorker(client, paths, feast, settings.feature_push_interval_s)
        except ArtifactError as exc:
            if not warned:
                log.warning("event=worker_waiting_for_catalogue error=%s", exc)
                warned = True
            time.sleep(wait_catalogue_s)
            continue
        log.info("event=worker_started pid=%d", os.getpid())
        worker.run(stop)
        return worker
    return None
