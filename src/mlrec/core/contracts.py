"""The strings two components must agree on, each defined once and imported everywhere else.

A mismatch here does not fail at import time but at serving time (Triton rejects an unknown
tensor, Feast an unknown feature service, a dashboard shows an empty stage), so nothing outside
this module spells them. The Redis key layout lives with its encoding in
:mod:`mlrec.online.redis_store`; the one copy we cannot import is the Feast feature repository
(it runs in Feast's own venv), and ``tests/core/test_contracts.py`` checks it agrees.
"""

from __future__ import annotations

# The ranker's one input and one output tensor: ONNX export, both Triton config.pbtxt flavours,
# and the gRPC client. (The native Python-backend model reads them from config.pbtxt.)
TRITON_INPUT = "ml_input"  # float32 (batch, n_features), features in feature-meta order
TRITON_OUTPUT = "ml_output"  # float32 (batch, 1), click probability

# Feature services of the Feast repository (offline_to_online/rank/feature_repo/features.py).
FEAST_USER_SERVICE = "ml_user"
FEAST_ITEM_SERVICE = "ml_item"
# The push source over the user view: POST /ml/event writes the new feature rows of its users there.
FEAST_USER_PUSH = "ml_user_push"

# The stages of POST /ml/rec in run order: ``Server-Timing`` entries, Prometheus ``stage`` labels
# and the benchmark's columns; ``total`` is the whole request.
STAGE_REDIS, STAGE_ES, STAGE_FEAST, STAGE_ASSEMBLE, STAGE_TRITON = "redis", "es", "feast", "assemble", "triton"
STAGES = (STAGE_REDIS, STAGE_ES, STAGE_FEAST, STAGE_ASSEMBLE, STAGE_TRITON)
TOTAL = "total"
# The service behind each remote stage, as named in 503 bodies and /healthz.
DEPENDENCIES = {STAGE_REDIS: "redis", STAGE_ES: "elasticsearch", STAGE_FEAST: "feast", STAGE_TRITON: "triton"}

# POST /ml/rec's answer: {"userid": N, ITEM_LIST: [{"itemid": i, "score": s}, ...]}, best first
ITEM_LIST = "item_list"
