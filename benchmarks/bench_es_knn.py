"""Exact (``flat``) vs approximate (HNSW) kNN for the item index on an Elasticsearch cluster: do the index's
copies agree, and what does a hybrid search cost?

Why: each replica builds its own HNSW graph, so approximate hits can differ between the copies of one
index, and an answer would then change with the node that served it. The served index is ``flat``
(:mod:`mlrec.online.es_index`); this benchmark loads the current artifacts into both kinds of index
(temporary aliases, deleted at the end) and, for each user of a sample, searches every copy alone
(``preference=_only_nodes:<node>``) with the served query (ties by item id), and then times it, interleaved.

Run:  python benchmarks/bench_es_knn.py          (on the cluster profile, after `make load PROFILE=cluster`)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mlrec.core import io
from mlrec.core.paths import ES_SCRIPT, Paths
from mlrec.core.settings import Settings
from mlrec.offline import channels
from mlrec.offline.channels import CHANNEL_K
from mlrec.online import es_index, redis_store

HNSW = {"type": "hnsw", "m": 16, "ef_construction": 100}  # what the index used before issue #12


def load(es, alias: str, paths: Paths, index_options: dict | None) -> None:
    served = es_index.index_body

    def body(dims: int, replicas: int) -> dict:
        b = served(dims, replicas)
        if index_options:
            b["mappings"]["properties"][es_index.VECTOR]["index_options"] = index_options
        return b

    es_index.index_body = body  # type: ignore[assignment]
    try:
        es_index.load_items(
            es, alias, io.read_id_lists(paths.item_term, ES_SCRIPT), io.read_npy(paths.item_vector, ES_SCRIPT)
        )
    finally:
        es_index.index_body = served  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="timed searches per user and index (after a warm-up one)")
    args = parser.parse_args()
    settings, paths = Settings.from_env(), Paths.from_env()
    es = es_index.connect(settings, timeout=60)
    nodes = [n["name"] for n in es.cat.nodes(format="json", h="name")]
    r = redis_store.connect(settings, 10)
    users = [u for u in (redis_store.read_user(r, i) for i in range(1, args.users + 1)) if u is not None]
    kinds = {"bench_knn_flat": None, "bench_knn_hnsw": HNSW}
    for alias, options in kinds.items():
        load(es, alias, paths, options)
    try:
        for alias in kinds:
            disagree = 0
            for u in users:
                hits = [
                    es_index.hybrid_search(
                        es, alias, u.terms, u.vector, u.seen, CHANNEL_K[channels.ES], preference=f"_only_nodes:{n}"
                    )[0].tolist()
                    for n in nodes
                ]
                disagree += any(h != hits[0] for h in hits[1:])
            print(f"{alias}: {len(nodes)} copies disagree for {disagree} of {len(users)} users")
        ms: dict[str, list[float]] = {alias: [] for alias in kinds}
        for round_ in range(args.rounds + 1):  # round 0 warms both indexes up and is not counted
            for alias in kinds:
                for u in users:
                    start = time.perf_counter()
                    es_index.hybrid_search(es, alias, u.terms, u.vector, u.seen, CHANNEL_K[channels.ES])
                    if round_:
                        ms[alias].append((time.perf_counter() - start) * 1000)
        for alias, values in ms.items():
            v = np.array(values)
            print(f"{alias}: hybrid search p50 {np.percentile(v, 50):.1f} ms, p99 {np.percentile(v, 99):.1f} ms")
    finally:
        for alias in kinds:
            es.indices.delete(index=f"{alias}_*", ignore_unavailable=True)


if __name__ == "__main__":
    main()
