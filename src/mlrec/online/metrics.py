"""Prometheus metrics of the recommender: per-stage latency histograms and request counts.

The ``stage`` label takes the values of :data:`mlrec.core.contracts.STAGES` plus ``total``, the
same names as the ``Server-Timing`` header. Under gunicorn each worker is a process, so the server
script (:data:`~mlrec.core.paths.SERVER_SCRIPT`) sets
``PROMETHEUS_MULTIPROC_DIR`` and ``GET /metrics`` aggregates every worker's samples; under the
Flask dev server (one process) the default registry is used.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

# 0.5 ms .. 2.5 s: the hops are sub-millisecond (Redis) to tens of milliseconds (Elasticsearch)
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
STAGE_SECONDS = Histogram("mlrec_stage_seconds", "Wall time of one stage of POST /ml/rec", ["stage"], buckets=BUCKETS)
REQUESTS = Counter("mlrec_requests", "POST /ml/rec requests by HTTP status", ["status"])


def observe(timings_ms: dict[str, float]) -> None:
    """One histogram sample per stage of a request (``timings_ms`` as in ``RecResult.timings_ms``)."""
    for stage, ms in timings_ms.items():
        STAGE_SECONDS.labels(stage=stage).observe(ms / 1000.0)


def render() -> tuple[bytes, str]:
    """The exposition text for ``GET /metrics``."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
