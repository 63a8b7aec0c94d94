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
from mlrec.core.contracts import (
    DEPENDENCIES,
    FEAST_ITEM_SERVICE,
    FEAST_USER_SERVICE,
    STAGE_ASSEMBLE,
    STAGE_ES,
    STAGE_FEAST,
    STAGE_REDIS,
    STAGE_TRITON,
    TOTAL,
)
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.online import es_index, redis_store
from mlrec.online.assemble import FeatureAssembler
from mlrec.online.errors import DependencyUnavailable
from mlrec.online.feast_store import FeastClient, FeastError
from mlrec.online.triton_ranker import TritonError, TritonRanker

log = logging.getLogger(__name__)
# The client errors that mean "this stage's service is down or too slow" (-> 503 naming it).
_ERRORS: dict[str, tuple[type[Exception], ...]] = {
    STAGE_REDIS: (redis.RedisError,),
    STAGE_ES: (elasticsearch.ApiError, elasticsearch.TransportError),
    STAGE_FEAST: (FeastError,),
    STAGE_TRITON: (TritonError,),
}
POPULAR = "popular"  # RecResult.fallback for a user the system has never seen


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
                    raise DependencyUnavailable(DEPENDENCIES[name], f"{type(exc).__name__}") from exc
            else:
                yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - start) * 1000

    def finish(self) -> dict[str, float]:
        self.ms[TOTAL] = (time.perf_counter() - self._start) * 1000
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
        return self._fetch_items().item_card - 1

    def _fetch_items(self) -> FeatureAssembler:
        card = self.meta.features[self.meta.names.index(ITEMID)].cardinality
        self.feast.forget()  # a new materialization may come with a new feature service definition
        try:
            items = self.feast.get(FEAST_ITEM_SERVICE, ITEMID, np.arange(1, card))
        except FeastError as exc:
            raise DependencyUnavailable(
                DEPENDENCIES[STAGE_FEAST], "item features: " + type(exc.__cause__ or exc).__name__
            ) from exc
        assembler = FeatureAssembler(self.meta, items)
        with self._lock:
            self._assembler = assembler
        return assembler

    @property
    def assembler(self) -> FeatureAssembler:
        assembler = self._assembler
        return assembler if assembler is not None else self._fetch_items()

    def _popular(self, size: int) -> list[RecItem]:
        ids, scores = redis_store.read_popular(self.redis)
        return [RecItem(int(i), float(s)) for i, s in zip(ids[:size], scores[:size], strict=False)]

    # -- the chain -----------------------------------------------------------------------------
    def recommend(self, userid: int, size: int = RESPONSE_SIZE) -> RecResult:
        timer = StageTimer()
        with timer.stage(STAGE_REDIS):
            user = redis_store.read_user(self.redis, userid)
            popular = self._popular(size) if user is None else []
        if user is None:
            return RecResult(userid, popular, fallback=POPULAR, timings_ms=timer.finish())
        with timer.stage(STAGE_ES):
            candidates = es_index.hybrid_search(
                self.es, self.es_alias, user.terms, user.vector, user.seen, k=self.recall_size
            )
        if len(candidates) == 0:
            return RecResult(userid, [], timings_ms=timer.finish())
        with timer.stage(STAGE_FEAST):
            user_features = self.feast.get(FEAST_USER_SERVICE, USERID, [userid])
        with timer.stage(STAGE_ASSEMBLE):
            assembler = self.assembler
            x = assembler.build(userid, assembler.user_row(user_features), candidates)
        with timer.stage(STAGE_TRITON):
            scores = self.ranker.score(x)
        order = np.argsort(-scores, kind="stable")[:size]
        items = [RecItem(int(candidates[i]), float(scores[i])) for i in order]
        return RecResult(userid, items, timings_ms=timer.finish())

    # -- health --------------------------------------------------------------------------------
    def health(self) -> dict[str, str]:
        """Each dependency's state: "ok" or a short reason."""
        checks = {
            DEPENDENCIES[STAGE_REDIS]: lambda: self.redis.ping(),
            DEPENDENCIES[STAGE_ES]: lambda: bool(self.es.indices.exists_alias(name=self.es_alias)) or "alias missing",
            DEPENDENCIES[STAGE_FEAST]: lambda: self.feast.get(FEAST_USER_SERVICE, USERID, [1]) and True,
            DEPENDENCIES[STAGE_TRITON]: lambda: self.ranker.ready() or "model not ready",
        }
        states = {}
        for name, check in checks.items():
            try:
                result = check()
                states[name] = "ok" if result is True else str(result)
            except Exception as exc:  # health must report, never raise
                states[name] = type(exc).__name__
        return states
