"""The online chain: Redis -> Elasticsearch -> Feast -> feature assembly -> Triton -> top K.

Each hop is timed (the timings become the ``Server-Timing`` header and Prometheus histograms) and
each hop's client errors become one :class:`DependencyUnavailable` naming that hop, so a dead or
slow service yields a 503 that says which one — never a hang (every client has a timeout) and
never a stack trace to the caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import elasticsearch
import numpy as np
import redis

from mlrec.core.constants import ITEMID, RECALL_SIZE, RESPONSE_SIZE, USERID
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.online import es_index, redis_store
from mlrec.online.assemble import FeatureAssembler
from mlrec.online.errors import DependencyUnavailable
from mlrec.online.feast_store import ITEM_SERVICE, USER_SERVICE, FeastClient, FeastError
from mlrec.online.triton_ranker import TritonError, TritonRanker

log = logging.getLogger(__name__)
STAGES = ("redis", "es", "feast", "assemble", "triton")
_ERRORS = {
    "redis": (redis.RedisError,),
    "es": (elasticsearch.ApiError, elasticsearch.TransportError),
    "feast": (FeastError,),
    "triton": (TritonError,),
}
_NAMES = {"redis": "redis", "es": "elasticsearch", "feast": "feast", "triton": "triton"}


@dataclass(frozen=True)
class RecItem:
    itemid: int
    score: float


@dataclass
class RecResult:
    userid: int
    items: list[RecItem]
    fallback: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


class StageTimer:
    """Wall time per stage in milliseconds, plus ``total``."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            if name in _ERRORS:
                try:
                    yield
                except _ERRORS[name] as exc:
                    raise DependencyUnavailable(_NAMES[name], f"{type(exc).__name__}") from exc
            else:
                yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - start) * 1000

    def finish(self) -> dict[str, float]:
        self.ms["total"] = (time.perf_counter() - self._start) * 1000
        return self.ms


class Recommender:
    """Owns one client per service (built once, reused by every request and thread)."""

    def __init__(
        self,
        meta: FeatureMeta,
        redis_client: redis.Redis,
        es: elasticsearch.Elasticsearch,
        es_alias: str,
        feast: FeastClient,
        ranker: TritonRanker,
        recall_size: int = RECALL_SIZE,
    ) -> None:
        self.meta, self.redis, self.es, self.es_alias = meta, redis_client, es, es_alias
        self.feast, self.ranker, self.recall_size = feast, ranker, recall_size
        self._assembler: FeatureAssembler | None = None
        self._lock = threading.Lock()

    # -- item features: fetched once from Feast, refreshed on demand ---------------------------
    def refresh_items(self) -> int:
        """Fetch every item's features from Feast into the assembler; returns the item count."""
        card = self.meta.features[self.meta.names.index(ITEMID)].cardinality
        self.feast.forget()  # a new materialization may come with a new feature service definition
        try:
            items = self.feast.get(ITEM_SERVICE, ITEMID, np.arange(1, card))
        except FeastError as exc:
            raise DependencyUnavailable("feast", "item features: " + type(exc.__cause__ or exc).__name__) from exc
        assembler = FeatureAssembler(self.meta, items)
        with self._lock:
            self._assembler = assembler
        return card - 1

    @property
    def assembler(self) -> FeatureAssembler:
        if self._assembler is None:
            self.refresh_items()
        return self._assembler  # type: ignore[return-value]

    # -- the chain -----------------------------------------------------------------------------
    def recommend(self, userid: int, size: int = RESPONSE_SIZE) -> RecResult:
        timer = StageTimer()
        with timer.stage("redis"):
            user = redis_store.read_user(self.redis, userid)
            popular = redis_store.read_popular(self.redis) if user is None else None
        if user is None:
            ids, scores = popular
            items = [RecItem(int(i), float(s)) for i, s in zip(ids[:size], scores[:size])]
            return RecResult(userid, items, fallback="popular", timings_ms=timer.finish())
        with timer.stage("es"):
            candidates = es_index.hybrid_search(
                self.es, self.es_alias, user.terms, user.vector, user.seen, k=self.recall_size
            )
        if len(candidates) == 0:
            return RecResult(userid, [], timings_ms=timer.finish())
        with timer.stage("feast"):
            user_features = self.feast.get(USER_SERVICE, USERID, [userid])
        with timer.stage("assemble"):
            assembler = self.assembler
            x = assembler.build(userid, assembler.user_row(user_features), candidates)
        with timer.stage("triton"):
            scores = self.ranker.score(x)
        order = np.argsort(-scores, kind="stable")[:size]
        items = [RecItem(int(candidates[i]), float(scores[i])) for i in order]
        return RecResult(userid, items, timings_ms=timer.finish())

    # -- health --------------------------------------------------------------------------------
    def health(self) -> dict[str, str]:
        """Each dependency's state: "ok" or a short reason."""
        checks = {
            "redis": lambda: self.redis.ping(),
            "elasticsearch": lambda: bool(self.es.indices.exists_alias(name=self.es_alias)) or "alias missing",
            "feast": lambda: self.feast.get(USER_SERVICE, USERID, [1]) and True,
            "triton": lambda: self.ranker.ready() or "model not ready",
        }
        states = {}
        for name, check in checks.items():
            try:
                result = check()
                states[name] = "ok" if result is True else str(result)
            except Exception as exc:  # health must report, never raise
                states[name] = type(exc).__name__
        return states
