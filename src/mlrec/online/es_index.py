"""Items in Elasticsearch: genre terms + MF vectors in one index, queried by hybrid term + kNN recall.

Similarity is ``max_inner_product``: the MF model scores a (user, item) pair by the raw dot product,
so the kNN search ranks items exactly as the model would (cosine would silently re-rank by vector
norm). Vectors are indexed ``flat`` (exact search over float vectors), not HNSW, and equal scores
are ordered by item id (:data:`TIE_BREAK`), so every copy of the index returns the same hits: each
replica builds its own approximate HNSW graph, and on the 3-node cluster, after a node had been killed
and recovered, 52 of 200 ml-100k users got different hits from different copies (an answer changed with
the node that served it). ``benchmarks/bench_es_knn.py`` compares the two on the running cluster. Not
the int8 quantized default of recent 8.x releases either, so scores are the model's own.

Every load writes a brand-new index and then moves the alias to it in one atomic
``update_aliases`` call; readers never see a half-loaded index, and a failed load leaves the
previous index serving. On a cluster the index has one primary shard and a replica on every other
data node (2 on the cluster profile's 3 nodes), and the alias moves only once every copy is
allocated (green): any one node can then die without losing a search.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch, helpers
from tqdm import tqdm

from mlrec.core.constants import EMB_DIM, GENRES, ITEMID
from mlrec.core.errors import MlrecError
from mlrec.offline.channels import KNN_BOOST, TERM_BOOST

log = logging.getLogger(__name__)
VECTOR = "item_vector"
REPLICA_WAIT_S = 60  # how long a load waits for the new index's replicas before it gives up


class IndexLoadError(MlrecError, RuntimeError):
    """The new index did not receive every document; the alias still points at the old one."""


def index_body(dims: int = EMB_DIM, replicas: int = 0) -> dict:
    return {
        "settings": {"number_of_shards": 1, "number_of_replicas": replicas},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                ITEMID: {"type": "integer"},
                GENRES: {"type": "keyword"},  # genre codes as strings: exact-match terms
                VECTOR: {
                    "type": "dense_vector",
                    "dims": dims,
                    "index": True,
                    "similarity": "max_inner_product",
                    "index_options": {"type": "flat"},
                },
            },
        },
    }


def connect(settings, timeout: float | None = None) -> Elasticsearch:
    """A client for every node in ``settings.es_urls``; basic auth only when a password is configured.

    With several nodes the client (elastic-transport) spreads requests over them, sets a node that
    fails aside with a growing backoff, and retries a failed request on another node (up to its
    ``max_retries``, 3 by default; the server sets it per tier).

    Over https the server's certificate is always verified (a password sent to an unverified
    server is a password given away), against ``settings.es_ca_path`` when set (Elasticsearch's
    self-signed ``http_ca.crt``) or else the client's default bundle (certifi). Plain http gets no TLS options.
    """
    auth = (settings.es_user, settings.es_password) if settings.es_password else None
    tls: dict[str, Any] = {}
    if settings.es_scheme == "https":
        tls["verify_certs"] = True
        if settings.es_ca_path:
            if not Path(settings.es_ca_path).is_file():  # the client would only fail at the first request
                raise MlrecError(
                    f"MLREC_ES_CA_PATH={settings.es_ca_path}: no such file",
                    "point MLREC_ES_CA_PATH at the cluster's CA certificate (PEM, e.g. config/certs/http_ca.crt)",
                )
            tls["ca_certs"] = settings.es_ca_path
    return Elasticsearch(
        settings.es_urls,
        basic_auth=auth,
        request_timeout=timeout or settings.timeout_s,
        **tls,
    )


def _actions(index: str, item_terms: Mapping[int, Sequence[int] | np.ndarray], vectors: np.ndarray):
    for itemid, genres in item_terms.items():
        yield {
            "_index": index,
            "_id": str(itemid),
            "_source": {ITEMID: int(itemid), GENRES: [str(g) for g in genres], VECTOR: vectors[itemid].tolist()},
        }


@dataclass(frozen=True)
class LoadResult:
    index: str
    documents: int
    replaced: list[str]
    replicas: int = 0


def load_items(
    es: Elasticsearch, alias: str, item_terms: Mapping[int, Sequence[int] | np.ndarray], vectors: np.ndarray
) -> LoadResult:
    """Bulk-load every item into a new index, refresh, verify the count, wait for every replica,
    then swap the alias."""
    index = f"{alias}_{time.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:6]}"
    replicas = int(es.cluster.health()["number_of_data_nodes"]) - 1  # a copy on every data node
    es.options(request_timeout=60).indices.create(index=index, **index_body(vectors.shape[1], replicas))
    try:
        ok = 0
        bar = tqdm(total=len(item_terms), desc="es items", unit="doc", disable=None)
        for success, _ in helpers.streaming_bulk(
            es.options(request_timeout=60), _actions(index, item_terms, vectors), chunk_size=500, raise_on_error=True
        ):
            ok += success
            bar.update(1)
        bar.close()
        es.indices.refresh(index=index)
        count = es.count(index=index)["count"]
        if count != len(item_terms):
            raise IndexLoadError(
                f"index {index}: {count} documents, expected {len(item_terms)}",
                "the alias still points at the previous index; re-run the loader and check the Elasticsearch log",
            )
        health = es.options(request_timeout=REPLICA_WAIT_S + 10, ignore_status=408).cluster.health(
            index=index, wait_for_status="green", timeout=f"{REPLICA_WAIT_S}s"
        )
        if health.get("status") != "green":
            raise IndexLoadError(
                f"index {index}: {replicas} replica(s) not allocated within {REPLICA_WAIT_S} s "
                f"({health.get('unassigned_shards')} shard copies unassigned)",
                "the alias still points at the previous index; check that every node is up "
                "(`make services-status`) and has disk space, then re-run the loader",
            )
    except Exception:
        es.indices.delete(index=index, ignore_unavailable=True)
        raise
    old = list(es.indices.get_alias(name=alias).keys()) if es.indices.exists_alias(name=alias) else []
    es.indices.update_aliases(
        actions=[{"add": {"index": index, "alias": alias}}] + [{"remove": {"index": o, "alias": alias}} for o in old]
    )
    for o in old:
        es.indices.delete(index=o, ignore_unavailable=True)
    return LoadResult(index=index, documents=count, replaced=old, replicas=replicas)


def hybrid_query(terms: list[int], vector: np.ndarray, exclude: np.ndarray, k: int, num_candidates: int = 1000) -> dict:
    """Search body: kNN on the user vector (boost 0.9) + genre terms (boost 0.1), seen items excluded in both.

    An empty ``vector`` (a user who so far arrived through ``POST /ml/event`` only) leaves the kNN out."""
    not_seen = {"bool": {"must_not": {"terms": {ITEMID: np.asarray(exclude).tolist()}}}}
    body: dict[str, Any] = {"size": k, "_source": False}
    if np.asarray(vector).size:
        body["knn"] = {
            "field": VECTOR,
            "query_vector": np.asarray(vector, dtype=np.float32).tolist(),
            "k": k,
            "num_candidates": max(num_candidates, k),
            "boost": KNN_BOOST,
            "filter": not_seen,
        }
    if terms:
        body["query"] = {
            "bool": {"must": {"terms": {GENRES: [str(t) for t in terms], "boost": TERM_BOOST}}, "filter": not_seen}
        }
    return body


# How the serving path asks for the hits (the ranking is the same as with the plain body):
# - no stored fields: reading ``_id`` decompresses each hit's stored-field block, which holds the
#   whole ``_source`` with the vector; the item id comes from doc values instead. Measured on
#   ml-100k (200 hits): ~9 -> ~4 ms per search and about half of Elasticsearch's CPU per query;
# - no total-hit count, and ``filter_path`` so the response carries only the ids and their scores
#   (the score is the "es" channel's request feature, :mod:`mlrec.offline.channels`).
LEAN_FETCH: dict[str, Any] = {
    "stored_fields": "_none_",
    "docvalue_fields": [ITEMID],
    "track_total_hits": False,
    "filter_path": f"hits.hits.fields.{ITEMID},hits.hits._score",
}
# Equal scores are ordered by item id, not by Lucene's document order: that order depends on how each
# copy of the index merged its segments, so on a cluster tied hits (e.g. at the k-th place) could come
# back in a different order, or not at all, depending on the node that answered.
TIE_BREAK = [{"_score": "desc"}, {ITEMID: "asc"}]


def hybrid_search(
    es: Elasticsearch,
    alias: str,
    terms: list[int],
    vector: np.ndarray,
    exclude: np.ndarray,
    k: int,
    num_candidates: int = 1000,
    preference: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(item ids int64, Elasticsearch ``_score`` float32) of the hybrid recall, best first (at most ``k``,
    ties by item id); empty, without a search, for a user with neither a vector nor terms. ``preference``
    pins the search to some copies (``_only_nodes:es-2``: a benchmark comparing the copies)."""
    if not terms and not np.asarray(vector).size:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    body = {key: v for key, v in hybrid_query(terms, vector, exclude, k, num_candidates).items() if key != "_source"}
    if preference:
        body["preference"] = preference
    res = es.search(index=alias, **body, sort=TIE_BREAK, **LEAN_FETCH)
    hits = res.get("hits", {}).get("hits", [])  # filter_path drops "hits" entirely when nothing matched
    ids = np.array([h["fields"][ITEMID][0] for h in hits], dtype=np.int64)
    return ids, np.array([h["_score"] for h in hits], dtype=np.float32)


def term_hit_count(es: Elasticsearch, alias: str, genre: int) -> int:
    return es.count(index=alias, query={"terms": {GENRES: [str(genre)]}})["count"]


def knn_ids(es: Elasticsearch, alias: str, vector: np.ndarray, k: int, num_candidates: int = 1000) -> np.ndarray:
    res = es.search(
        index=alias,
        knn={
            "field": VECTOR,
            "query_vector": np.asarray(vector).tolist(),
            "k": k,
            "num_candidates": max(num_candidates, k),
        },
        size=k,
        source=False,
    )
    return np.array([int(h["_id"]) for h in res["hits"]["hits"]], dtype=np.int64)
