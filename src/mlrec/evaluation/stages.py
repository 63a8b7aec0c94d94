"""The recall stages' candidate lists, queried in the REAL Elasticsearch with inputs from the REAL Redis.

Two sources. :func:`channel_lists` asks the service's own :class:`~mlrec.online.recommender.Retriever`
(Redis + Elasticsearch, no Feast, no Triton) for every user's channel lists and their union in recall
order: the lists the ranker re-orders, so ranker lift = NDCG(served) - NDCG(union's recall order).

Each user's recall inputs (terms, MF vector, seen filter) are read from the same Redis hash the
service reads, and the search bodies are derived from the service's own
:func:`mlrec.online.es_index.hybrid_query`: the hybrid body itself (the "recall order" the ranker
re-orders, so ranker lift = NDCG(served) - NDCG(recall order)), that body without its kNN part
(term recall alone) and without its term query (vector recall alone).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import redis
from elasticsearch import Elasticsearch
from tqdm import tqdm

from mlrec.core.constants import RECALL_SIZE
from mlrec.evaluation.metrics import pad_lists
from mlrec.offline.channels import CHANNEL_K, CHANNELS
from mlrec.online import es_index, redis_store
from mlrec.online.recommender import Retriever

STAGES = ("term", "vector", "hybrid")
UNION = "union"
UNION_SIZE = sum(CHANNEL_K.values())  # the most candidates the union can hold


def read_recall_inputs(
    client: redis.Redis, userids: np.ndarray, batch: int = 1000
) -> list[redis_store.UserRecall | None]:
    """Each user's served recall inputs (``HGETALL user<id>``, pipelined); None when Redis has no hash."""
    out: list[redis_store.UserRecall | None] = []
    for lo in range(0, len(userids), batch):
        chunk = userids[lo : lo + batch].tolist()
        pipe = client.pipeline(transaction=False)
        for uid in chunk:
            pipe.hgetall(redis_store.user_key(uid))
        out += [redis_store.decode_user(uid, f) if f else None for uid, f in zip(chunk, pipe.execute(), strict=True)]
    return out


def stage_bodies(user: redis_store.UserRecall, k: int) -> dict[str, dict[str, Any] | None]:
    """The served hybrid search body, and the same body with one half removed.

    Deriving the single-stage bodies from :func:`es_index.hybrid_query` keeps k, num_candidates
    and the seen-item filter identical to what the service sends. A user without terms has no
    term-only query (None: an empty candidate list).
    """
    hybrid = es_index.hybrid_query(user.terms, user.vector, user.seen, k)
    return {
        "term": {key: v for key, v in hybrid.items() if key != "knn"} if "query" in hybrid else None,
        "vector": {key: v for key, v in hybrid.items() if key != "query"},
        "hybrid": hybrid,
    }


def _search_ids(es: Elasticsearch, alias: str, body: dict[str, Any] | None) -> np.ndarray:
    if body is None:
        return np.zeros(0, np.int64)
    res = es.search(index=alias, **body)
    return np.array([int(h["_id"]) for h in res["hits"]["hits"]], dtype=np.int64)


def recall_stage_lists(
    es: Elasticsearch,
    alias: str,
    users: list[redis_store.UserRecall | None],
    k: int = RECALL_SIZE,
    concurrency: int = 8,
) -> dict[str, np.ndarray]:
    """Per stage, ``[users, k]`` candidate lists in the order Elasticsearch returns them."""

    def one(user: redis_store.UserRecall | None) -> dict[str, np.ndarray]:
        if user is None:  # not in Redis: the service would answer with the popular fallback
            return {s: np.zeros(0, np.int64) for s in STAGES}
        return {s: _search_ids(es, alias, b) for s, b in stage_bodies(user, k).items()}

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        rows = list(tqdm(pool.map(one, users), total=len(users), desc="es stages", unit="user", disable=None))
    return {s: pad_lists([r[s] for r in rows], k) for s in STAGES}


def channel_lists(retriever: Retriever, userids: np.ndarray, concurrency: int = 8) -> dict[str, np.ndarray]:
    """Per channel (padded to its k) and for the union in recall order (padded to ``UNION_SIZE``):
    ``[users, width]`` lists from the service's own recall path. A user Redis does not hold gets
    empty lists (the service would answer with the popular fallback)."""

    def one(userid: int) -> dict[str, np.ndarray]:
        recall = retriever.recall(int(userid))
        if recall is None:
            return {name: np.zeros(0, np.int64) for name in (*CHANNELS, UNION)}
        return {**{c: recall.lists[c].ids for c in CHANNELS}, UNION: recall.candidates.ids}

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        rows = list(tqdm(pool.map(one, userids.tolist()), total=len(userids), desc="recall", unit="user", disable=None))
    widths = {**CHANNEL_K, UNION: UNION_SIZE}
    return {name: pad_lists([r[name] for r in rows], width) for name, width in widths.items()}
