"""The online chain: Redis -> Elasticsearch -> Feast -> feature assembly -> Triton -> top K.

Recall (:meth:`Recommender.recall`) has four channels (:mod:`mlrec.offline.channels`): the
Elasticsearch hybrid search, two item-to-item channels scored from the Redis neighbour lists of
the user's recent items, and the popular list; the ranker scores their union, with each
candidate's channel ranks and scores as request features.

Each hop is timed (the timings become the ``Server-Timing`` header and Prometheus histograms) and
each hop's client errors become one :class:`DependencyUnavailable` naming that hop, so a dead or
slow service yields a 503 that says which one — never a hang (every client has a timeout) and
never a stack trace to the caller.

A tier may have several nodes (the cluster profile): the Elasticsearch client retries on another node,
and the Feast and Triton pools (:mod:`mlrec.online.failover`) step over a node that does not answer, all
within one time budget per request (:class:`~mlrec.online.failover.Deadline`); a 503 then means every
node of that tier failed, or the budget ran out in that tier.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import elasticsearch
import numpy as np
import redis

from mlrec.core import io
from mlrec.core.constants import ITEMID, RESPONSE_SIZE, USERID
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
from mlrec.core.paths import TERMS_SCRIPT
from mlrec.offline import channels
from mlrec.offline.channels import CHANNEL_K, NEIGHBOUR_CHANNELS, Candidates, ChannelList
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.offline.pit import genre_matrix
from mlrec.online import es_index, redis_store
from mlrec.online.assemble import FeatureAssembler
from mlrec.online.errors import CatalogueMissing, DependencyUnavailable
from mlrec.online.event_worker import submit
from mlrec.online.events import Applied, Event
from mlrec.online.failover import BudgetSpent, Deadline
from mlrec.online.feast_store import FeastError, FeastPool
from mlrec.online.triton_ranker import TritonError, TritonPool

log = logging.getLogger(__name__)
# The client errors that mean "this stage's service is down or too slow" (-> 503 naming it).
_ERRORS: dict[str, tuple[type[Exception], ...]] = {
    STAGE_REDIS: (redis.RedisError,),  # Redis is one node and asked first: no budget to check
    STAGE_ES: (elasticsearch.ApiError, elasticsearch.TransportError, BudgetSpent),
    STAGE_FEAST: (FeastError, BudgetSpent),
    STAGE_TRITON: (TritonError, BudgetSpent),
}
ITEM_FETCH_TIMEOUT_S = 30.0  # the catalogue's item features, fetched once at start and on refresh
POPULAR = "popular"  # RecResult.fallback for a user the system has never seen


@dataclass(frozen=True)
class RecItem:
    itemid: int
    score: float


@dataclass(frozen=True)
class Recall:
    """One user's recall: what Redis holds for them, each channel's list, and the union the ranker scores."""

    user: redis_store.UserRecall
    lists: dict[str, ChannelList]  # by channel name, best first
    candidates: Candidates  # the union in recall (reciprocal-rank-fusion) order, with request features


@dataclass
class RecResult:
    userid: int
    items: list[RecItem]
    fallback: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


class StageTimer:
    """Wall time per stage in milliseconds, plus ``total``; and the request's :class:`Deadline` (None: no budget)."""

    def __init__(self, budget_s: float | None = None) -> None:
        self.ms: dict[str, float] = {}
        self._start = time.perf_counter()
        self.deadline = Deadline(budget_s) if budget_s else None

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


class Retriever:
    """The recall half of the chain: Redis and Elasticsearch only (the evaluation uses it alone)."""

    def __init__(
        self, redis_client: redis.Redis, es: elasticsearch.Elasticsearch, es_alias: str, timeout_s: float = 2.0
    ) -> None:
        self.redis, self.es, self.es_alias, self.timeout_s = redis_client, es, es_alias, timeout_s

    def recall(self, userid: int, timer: StageTimer | None = None) -> Recall | None:
        """Every channel's list and their union for a known user; None for a user Redis does not hold.

        Touches Redis and Elasticsearch only (the evaluation calls it directly); ``timer`` collects
        their stage timings (``recommend`` passes its own, so they land in ``Server-Timing``).
        """
        return self.recall_or_popular(userid, timer or StageTimer())[0]

    def recall_or_popular(self, userid: int, timer: StageTimer) -> tuple[Recall | None, ChannelList]:
        """(the recall or None, the popular list as stored: the unknown user's fallback)."""
        with timer.stage(STAGE_REDIS):
            user, (pop_ids, pop_scores) = redis_store.read_user_and_popular(self.redis, userid)
            popular = ChannelList(pop_ids.astype(np.int64), pop_scores.astype(np.float32))
            if user is None:
                return None, popular
            neighbours = redis_store.read_neighbour_channels(self.redis, user.recent, NEIGHBOUR_CHANNELS)
        with timer.stage(STAGE_ES):
            es = self.es
            if timer.deadline is not None:  # each node's attempt gets what is left of the budget, at most
                es = es.options(request_timeout=timer.deadline.timeout(self.timeout_s))
            es_ids, es_scores = es_index.hybrid_search(
                es, self.es_alias, user.terms, user.vector, user.seen, k=CHANNEL_K[channels.ES]
            )
        lists = {channels.ES: ChannelList(es_ids, es_scores)}
        for channel in NEIGHBOUR_CHANNELS:
            nb_ids, nb_weights = neighbours[channel]
            ids, scores = channels.neighbour_scores(nb_ids, nb_weights)
            lists[channel] = channels.top_unseen(ids, scores, user.seen, CHANNEL_K[channel])
        lists[channels.POPULAR] = channels.top_unseen(
            popular.ids, popular.scores, user.seen, CHANNEL_K[channels.POPULAR]
        )
        return Recall(user, lists, channels.union(lists)), popular


class Recommender:
    """Owns one client per service (built once, reused by every request and thread)."""

    def __init__(
        self,
        meta: FeatureMeta,
        redis_client: redis.Redis,
        es: elasticsearch.Elasticsearch,
        es_alias: str,
        feast: FeastPool,
        ranker: TritonPool,
        item_genres: Path | None = None,
        event_wait_s: float = 5.0,
        budget_s: float | None = None,
        timeout_s: float = 2.0,
    ) -> None:
        self.meta, self.redis, self.es, self.es_alias = meta, redis_client, es, es_alias
        self.feast, self.ranker = feast, ranker
        self.retriever = Retriever(redis_client, es, es_alias, timeout_s)
        self.budget_s = budget_s
        self._assembler: FeatureAssembler | None = None
        self._lock = threading.Lock()
        self.item_genres_path = item_genres
        self._genres: np.ndarray | None = None
        self.event_wait_s = event_wait_s

    # -- events (POST /ml/event) ---------------------------------------------------------------
    @property
    def genres(self) -> np.ndarray:
        """The catalogue's item x genre matrix (the offline terms step's ``item_genres``), read once."""
        genres = self._genres
        if genres is None:
            if self.item_genres_path is None or not self.item_genres_path.is_file():
                raise CatalogueMissing(self.item_genres_path)
            genres = genre_matrix(io.read_id_lists(self.item_genres_path, TERMS_SCRIPT))
            self._genres = genres
        return genres

    def is_item(self, itemid: int) -> bool:
        """Whether the catalogue holds ``itemid`` (an item with a genre row, as Elasticsearch holds it)."""
        genres = self.genres
        return 0 < itemid < len(genres) and bool(genres[itemid].any())

    def ingest(self, events: list[Event]) -> Applied:
        """Hand ``events`` to the event worker, wait for what it applied (:func:`~mlrec.online.event_worker.submit`)."""
        with StageTimer().stage(STAGE_REDIS):  # a Redis error is the 503 naming Redis, as on /ml/rec
            return submit(self.redis, events, self.event_wait_s)

    # -- item features: fetched once from Feast, refreshed on demand ---------------------------
    def refresh_items(self) -> int:
        """Fetch every item's features from Feast into the assembler; returns the item count."""
        return self._fetch_items().item_card - 1

    def _fetch_items(self) -> FeatureAssembler:
        card = self.meta.id_space("item")
        self.feast.forget()  # a new materialization may come with a new feature service definition
        # One bulk call for the whole catalogue (thousands of items), so not the per-request timeout:
        # a busy feature server missed 2 s on 3,700 items and every request then answered 503.
        timeout_s = max(ITEM_FETCH_TIMEOUT_S, self.feast.timeout_s)
        try:
            items = self.feast.get(FEAST_ITEM_SERVICE, ITEMID, np.arange(1, card), timeout_s=timeout_s)
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

    # -- the chain -----------------------------------------------------------------------------
    def recall(self, userid: int, timer: StageTimer | None = None) -> Recall | None:
        """See :meth:`Retriever.recall`."""
        return self.retriever.recall(userid, timer)

    def recommend(self, userid: int, size: int = RESPONSE_SIZE) -> RecResult:
        timer = StageTimer(self.budget_s)
        recall, popular = self.retriever.recall_or_popular(userid, timer)
        if recall is None:
            items = [RecItem(int(i), float(s)) for i, s in zip(popular.ids[:size], popular.scores[:size], strict=False)]
            return RecResult(userid, items, fallback=POPULAR, timings_ms=timer.finish())
        candidates = recall.candidates
        if len(candidates.ids) == 0:
            return RecResult(userid, [], timings_ms=timer.finish())
        with timer.stage(STAGE_FEAST):
            user_features = self.feast.get(FEAST_USER_SERVICE, USERID, [userid], deadline=timer.deadline)
        with timer.stage(STAGE_ASSEMBLE):
            assembler = self.assembler
            x = assembler.build(userid, assembler.user_row(user_features), candidates.ids, request=candidates.features)
        with timer.stage(STAGE_TRITON):
            scores = self.ranker.score(x, deadline=timer.deadline)
        order = np.argsort(-scores, kind="stable")[:size]
        items = [RecItem(int(candidates.ids[i]), float(scores[i])) for i in order]
        return RecResult(userid, items, timings_ms=timer.finish())

    # -- health --------------------------------------------------------------------------------
    def events_health(self) -> str:
        """Whether an event worker is running (its heartbeat in Redis): "ok" or a short reason."""
        try:
            alive = self.redis.exists(redis_store.EVENT_WORKER_HEARTBEAT)
        except redis.RedisError as exc:
            return type(exc).__name__
        return (
            "ok" if alive else "no event worker heartbeat: POST /ml/event answers 503 (start online/main/s1_server.py)"
        )

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
