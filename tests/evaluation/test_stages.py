"""Recall stages: the single-stage bodies are the served hybrid body with one half removed."""

import numpy as np

from mlrec.evaluation.stages import stage_bodies
from mlrec.online.redis_store import UserRecall


def test_stage_bodies_split_the_served_hybrid_body():
    user = UserRecall(1, [3, 5], np.ones(16, np.float32), np.array([7, 8], np.int32), np.array([8], np.int32))
    bodies = stage_bodies(user, 200)
    assert set(bodies["hybrid"]) >= {"knn", "query"}
    assert "knn" not in bodies["term"] and bodies["term"]["query"] == bodies["hybrid"]["query"]
    assert "query" not in bodies["vector"] and bodies["vector"]["knn"] == bodies["hybrid"]["knn"]
    assert bodies["vector"]["size"] == bodies["term"]["size"] == 200
    no_terms = stage_bodies(
        UserRecall(2, [], np.ones(16, np.float32), np.array([], np.int32), np.array([], np.int32)), 200
    )
    assert no_terms["term"] is None
