"""Items' genre terms and MF vectors -> Elasticsearch (:data:`~mlrec.core.paths.ES_SCRIPT`)."""

from __future__ import annotations

import numpy as np

from mlrec.core import io
from mlrec.core.log import summary, timed
from mlrec.core.paths import ES_SCRIPT, TERM_RECALL_SCRIPT, VECTOR_RECALL_SCRIPT, Paths, step_name
from mlrec.core.settings import Settings
from mlrec.loaders import LoadCheckError
from mlrec.online import es_index


def load_es(paths: Paths, settings: Settings) -> dict:
    """Items' genre terms and MF vectors -> a new index behind the alias, then two checks."""
    with timed() as t:
        item_terms = io.read_id_lists(paths.item_term, TERM_RECALL_SCRIPT)
        vectors = io.read_npy(paths.item_vector, VECTOR_RECALL_SCRIPT)
        es = es_index.connect(settings, timeout=60)
        result = es_index.load_items(es, settings.es_index, item_terms, vectors)
    # term check (the seed's): hits for one genre == items that have it
    genre = 2
    true_count = sum(1 for g in item_terms.values() if genre in g)
    hits = es_index.term_hit_count(es, settings.es_index, genre)
    # vector check: kNN top-10 for an item's own vector == brute-force max inner product top-10
    ids = np.array(sorted(item_terms))
    probe = int(ids[len(ids) // 2])
    brute = ids[np.argsort(-(vectors[ids] @ vectors[probe]), kind="stable")[:10]]
    knn = es_index.knn_ids(es, settings.es_index, vectors[probe], k=10)
    print(
        f"es check: genre {genre}: true {true_count}, hit {hits}; "
        f"item {probe}: kNN top-1 {knn[0] if len(knn) else None}, brute-force top-1 {brute[0]}, "
        f"top-10 overlap {len(set(knn) & set(brute))}/10"
    )
    if hits != true_count or len(knn) == 0 or knn[0] != brute[0]:
        raise LoadCheckError(
            "elasticsearch: term or vector check failed (see the line above)",
            f"check `make services-status`, then re-run `python {ES_SCRIPT}`",
        )
    fields = dict(
        index=result.index,
        documents=result.documents,
        replicas=result.replicas,
        replaced=len(result.replaced),
        term_check=f"{hits}/{true_count}",
        knn_top10_overlap=len(set(knn) & set(brute)),
        seconds=t["seconds"],
    )
    summary(step_name(ES_SCRIPT), paths.metrics, **fields)
    return fields
