"""The live app's ``Server-Timing`` header, and the latency work's same-answer guarantees, on the real services.

The app is the real one (``create_app()``) talking to the real Redis / Elasticsearch / Feast /
Triton, loaded by the session's ``chain`` fixture (conftest.py); nothing here is timed against a
threshold (a shared machine makes any such assertion flaky) — only the header's structure and
internal consistency are checked.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import requests

from mlrec.core.constants import USERID
from mlrec.core.contracts import FEAST_USER_SERVICE, STAGE_REDIS, STAGES, TOTAL
from mlrec.core.settings import Settings
from mlrec.online import es_index, redis_store
from mlrec.online.feast_store import FeastClient

ROUNDING_MS = 0.005  # the header prints 2 decimals: each entry may be off by half a hundredth


def parse_server_timing(header: str) -> dict[str, float]:
    out = {}
    for entry in header.split(","):
        name, *params = [p.strip() for p in entry.split(";")]
        durs = [float(p[4:]) for p in params if p.startswith("dur=")]
        assert len(durs) == 1, f"entry {entry!r} must carry exactly one dur"
        out[name] = durs[0]
    return out


@pytest.fixture(scope="module")
def settings(chain) -> Settings:
    return chain[0]


@pytest.fixture(scope="module")
def client(chain):
    return chain[2].test_client()


@pytest.fixture(scope="module")
def known_users(chain) -> list[int]:
    users = np.sort(pd.read_parquet(chain[1].user_features, columns=[USERID])[USERID])
    return np.random.default_rng(7).choice(users, size=min(8, len(users)), replace=False).tolist()


def check_consistent(timing: dict[str, float]) -> None:
    stages = {k: v for k, v in timing.items() if k != TOTAL}
    assert TOTAL in timing
    assert all(v >= 0 for v in timing.values()), timing
    assert all(timing[TOTAL] + ROUNDING_MS >= v for v in stages.values()), timing
    assert sum(stages.values()) <= timing[TOTAL] + ROUNDING_MS * (len(stages) + 1), timing


def test_every_hop_is_in_the_header_and_adds_up_to_at_most_the_total(client, known_users):
    for userid in known_users:
        resp = client.post("/ml/rec", json={"userid": userid})
        assert resp.status_code == 200, resp.get_json()
        assert "fallback" not in resp.get_json()  # a known user: the full chain ran
        timing = parse_server_timing(resp.headers["Server-Timing"])
        assert list(timing) == [*STAGES, TOTAL], timing
        check_consistent(timing)


def test_unknown_user_header_has_only_the_hops_that_ran(client):
    resp = client.post("/ml/rec", json={"userid": 10**9})
    assert resp.status_code == 200 and resp.get_json()["fallback"] == "popular"
    timing = parse_server_timing(resp.headers["Server-Timing"])
    assert list(timing) == [STAGE_REDIS, TOTAL]
    check_consistent(timing)


def _stage_counts(client) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {m[1]: float(m[2]) for m in re.finditer(r'^mlrec_stage_seconds_count\{stage="(\w+)"\} (\S+)$', text, re.M)}


def test_metrics_count_each_stage_the_header_reports_once_per_request(client, known_users):
    before = _stage_counts(client)
    resp = client.post("/ml/rec", json={"userid": known_users[0]})
    after = _stage_counts(client)
    reported = parse_server_timing(resp.headers["Server-Timing"])
    assert {stage: after[stage] - before.get(stage, 0.0) for stage in after} == dict.fromkeys(reported, 1.0)


def test_lean_es_fetch_returns_the_plain_query_ranking(client, known_users, settings):
    """The doc-values / filter_path request must rank and score exactly like the plain hybrid body."""
    es = es_index.connect(settings)
    rec = client.application.extensions["recommender"]
    for userid in known_users:
        user = redis_store.read_user(rec.redis, userid)
        plain = es.search(index=settings.es_index, **es_index.hybrid_query(user.terms, user.vector, user.seen, 200))
        expected = [int(h["_id"]) for h in plain["hits"]["hits"]]
        got, scores = es_index.hybrid_search(es, settings.es_index, user.terms, user.vector, user.seen, k=200)
        assert got.tolist() == expected and len(expected) > 0
        assert scores.dtype == np.float32 and np.all(np.diff(scores) <= 0)
        np.testing.assert_array_equal(scores, np.array([h["_score"] for h in plain["hits"]["hits"]], np.float32))


def test_feast_by_references_equals_feast_by_service(client, known_users, settings):
    """After the first call the client asks by ``view:feature``; values must equal the service's."""
    feast = FeastClient(settings.feast_url)
    ids = [*known_users, 2**31 - 1]  # plus one id the store does not hold (tests post events for ids from 10**9)
    first, second = feast.get(FEAST_USER_SERVICE, USERID, ids), feast.get(FEAST_USER_SERVICE, USERID, ids)
    payload = requests.post(
        f"{settings.feast_url}/get-online-features",
        timeout=5,
        json={"feature_service": FEAST_USER_SERVICE, "entities": {USERID: ids}},
    ).json()
    names, results = payload["metadata"]["feature_names"], payload["results"]
    by_service = dict(zip(names, [r["values"] for r in results], strict=True))
    assert set(first) == set(second) == set(by_service)
    for name, values in by_service.items():
        ref = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        assert np.allclose(second[name].astype(np.float64), ref, equal_nan=True), name
    assert np.isnan(second[next(n for n in second if n != USERID)][-1])  # missing user -> NaN
