"""The whole chain on small planted synthetic data, against the real services (the session's
``chain`` fixture in conftest.py builds it: offline pipeline, every loader, the Flask app)."""

from __future__ import annotations

import numpy as np
import pytest

from mlrec.core import io
from mlrec.core.constants import RECALL_SIZE
from mlrec.loaders.offline_scorer import OfflineScorer
from mlrec_runtime import runtime
from mlrec_runtime.manager import start_service, wait_service


def test_offline_models_learn_the_planted_structure(chain):
    _, _, _, report, _ = chain
    assert report["rank"]["test_auc"] > 0.6
    assert report["mf"]["test_auc"] > 0.55
    assert report["rank"]["best_epoch"] <= report["rank"]["epochs"]


def test_loaders_and_parity(chain):
    _, _, _, report, _ = chain
    assert report["es"]["term_check"].split("/")[0] == report["es"]["term_check"].split("/")[1]
    assert report["parity"].rows >= 1000
    assert report["parity"].feature_max_diff <= 1e-5 and report["parity"].score_max_diff <= 1e-5


def test_recommendations_are_unique_unseen_sorted_and_equal_offline_scores(chain):
    settings, paths, app, _, _ = chain
    client = app.test_client()
    seen = io.read_id_lists(paths.user_filter, "s2_term_trans.py")
    scorer = OfflineScorer(paths)
    users = sorted(seen)[:5]
    for userid in users:
        resp = client.post("/ml/rec", json={"userid": userid})
        assert resp.status_code == 200, resp.get_json()
        items = resp.get_json()["item_list"]
        ids = np.array([it["itemid"] for it in items])
        scores = np.array([it["score"] for it in items])
        assert len(items) == 50 and len(set(ids.tolist())) == 50
        assert not set(ids.tolist()) & set(seen[userid].tolist())
        assert np.all(np.diff(scores) <= 0)
        np.testing.assert_allclose(scores, scorer.score(userid, ids), atol=1e-5, rtol=0)
        timing = resp.headers["Server-Timing"]
        assert all(f"{stage};dur=" in timing for stage in ("redis", "es", "feast", "triton", "total"))


def test_size_and_unknown_user_fallback(chain):
    _, _, app, _, _ = chain
    client = app.test_client()
    assert len(client.post("/ml/rec", json={"userid": 1, "size": 7}).get_json()["item_list"]) == 7
    body = client.post("/ml/rec", json={"userid": 10_000_000}).get_json()
    assert body["fallback"] == "popular" and len(body["item_list"]) == 50
    assert client.post("/ml/rec", json={"userid": 1, "size": RECALL_SIZE + 1}).status_code == 400


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"data": "{not json", "content_type": "application/json"}, "body"),
        ({"json": {"user": 1}}, "userid"),
        ({"json": {"userid": "abc"}}, "userid"),
        ({"json": {"userid": 1, "size": -3}}, "size"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(chain, kwargs, field):
    _, _, app, _, _ = chain
    resp = app.test_client().post("/ml/rec", **kwargs)
    assert resp.status_code == 400 and resp.get_json()["field"] == field


def test_a_stopped_dependency_is_a_503_naming_it_then_recovers(chain):
    settings, _, app, _, feast = chain
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    runtime.stop(feast.pid_path)  # the real feature server goes away mid-test
    try:
        resp = client.post("/ml/rec", json={"userid": 1})
        assert resp.status_code == 503
        assert resp.get_json()["dependency"] == "feast" and "Traceback" not in resp.get_data(as_text=True)
        health = client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["dependencies"]["feast"] != "ok"
    finally:
        assert start_service(feast)
        wait_service(feast)
    assert client.post("/ml/rec", json={"userid": 1}).status_code == 200
