"""Users' terms, vectors and seen-item filters -> Redis (:data:`~mlrec.core.paths.REDIS_SCRIPT`)."""

from __future__ import annotations

import numpy as np

from mlrec.core import io
from mlrec.core.constants import ISTEST, ITEMID, LABEL
from mlrec.core.log import summary, timed
from mlrec.core.paths import (
    REDIS_SCRIPT,
    SPLIT_SCRIPT,
    TERM_RECALL_SCRIPT,
    TERMS_SCRIPT,
    VECTOR_RECALL_SCRIPT,
    Paths,
    step_name,
)
from mlrec.core.settings import Settings
from mlrec.loaders import LoadCheckError
from mlrec.offline.popular import popular_items
from mlrec.online import redis_store


def load_redis(paths: Paths, settings: Settings) -> dict:
    """Users' terms, vectors and seen-item filters -> one hash per user; popularity fallback list."""
    with timed() as t:
        terms = io.read_id_lists(paths.user_term, TERM_RECALL_SCRIPT)
        vectors = io.read_npy(paths.user_vector, VECTOR_RECALL_SCRIPT)
        seen = io.read_id_lists(paths.user_filter, TERMS_SCRIPT)
        offline = io.read_parquet(paths.offline_imp, SPLIT_SCRIPT, columns=[ITEMID, LABEL, ISTEST])
        client = redis_store.connect(settings, timeout=10.0)
        n = redis_store.write_users(client, terms, vectors, seen)
        pop_ids, pop_scores = popular_items(offline)
        redis_store.write_popular(client, pop_ids, pop_scores)
    sample = min(seen)
    got = redis_store.read_user(client, sample)
    if (
        got is None
        or got.terms != terms.get(sample, np.zeros(0, np.int32)).tolist()
        or not np.array_equal(got.vector, vectors[sample])
        or not np.array_equal(got.seen, seen[sample])
    ):
        raise LoadCheckError(
            f"redis: {redis_store.user_key(sample)} read back differs from the offline artifacts",
            f"check that nothing else writes to Redis db {settings.redis_db}, then re-run `python {REDIS_SCRIPT}`",
        )
    head = [round(float(v), 4) for v in got.vector[:4]]
    print(
        f"redis check: HGETALL {redis_store.user_key(sample)} -> term={got.terms} vector[:4]={head} "
        f"filter={len(got.seen)} items (matches offline)"
    )
    fields = dict(users=n, popular=len(pop_ids), sample_user=sample, seconds=t["seconds"])
    summary(step_name(REDIS_SCRIPT), paths.metrics, **fields)
    return fields
