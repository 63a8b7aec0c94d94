"""The whole chain on small planted synthetic data, against the real services.

Offline (data -> split -> terms -> MF -> features -> DeepFM) in a temp data dir, then every loader
into the real Redis, Elasticsearch, Feast and Triton, then the Flask app answering POST /ml/rec.
Isolation from a developer's running demo: Redis db 1, a unique Elasticsearch alias, a unique
Triton model name, and a second `feast serve` on a free port for the temp data dir.
"""
from __future__ import annotations

import dataclasses
import socket

import numpy as np
import pytest
import redis

from mlrec import io, loaders, pipeline
from mlrec.constants import RECALL_SIZE
from mlrec.data import prepare_dataset, write_marker
from mlrec.offline_scorer import OfflineScorer
from mlrec.online.app import create_app
from mlrec.paths import Paths
from mlrec.services import FEATURE_REPO, runtime
from mlrec.services.feast_server import FeastServer
from mlrec.services.manager import start_service, wait_service
from mlrec.services.triton_server import docker_model_repository, native_model_repository
from mlrec.train import TrainConfig

SCALE = 40_000  # ratings: ~240 users, ~600 items


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def chain(services, tmp_path_factory):
    """Run offline + all loaders once; yield (settings, paths, app, offline report)."""
    paths = Paths(tmp_path_factory.mktemp("e2e-data"))
    raw = prepare_dataset("synthetic", paths, scale=SCALE, seed=7)
    write_marker(paths, "synthetic", raw, scale=SCALE, seed=7)
    cfg = TrainConfig(epochs=30, batch_size=512, patience=3)  # small data: smaller batches, more steps
    report = {
        "split": pipeline.run_split(paths),
        "terms": pipeline.run_terms(paths),
        "term_recall": pipeline.run_term_recall(paths),
        "mf": pipeline.run_vector_recall(paths, cfg),
        "features": pipeline.run_features(paths),
        "rank": pipeline.run_rank_train(paths, cfg),
    }
    tag = f"e2e{np.random.default_rng().integers(1e9)}"
    settings = dataclasses.replace(services, redis_db=1, es_index=f"mlrec_{tag}", triton_model=f"ml_rec_{tag}",
                                   feast_port=_free_port())
    feast = FeastServer(settings, paths, repo_dir=FEATURE_REPO, port=settings.feast_port, name=f"feast-{tag}")
    serving_root = Paths.from_env().triton_dir  # the repositories the running Triton serves
    r = redis.Redis(host=settings.host, port=settings.redis_port, db=settings.redis_db)
    r.flushdb()
    try:
        assert start_service(feast)
        wait_service(feast)
        report["redis"] = loaders.load_redis(paths, settings)
        report["es"] = loaders.load_es(paths, settings)
        report["feast"] = loaders.load_feast(paths, settings)
        report["triton"] = loaders.load_triton(paths, settings, repo_root=serving_root)
        report["parity"] = loaders.check_parity(paths, settings)
        app = create_app({"SETTINGS": settings, "PATHS": paths, "TESTING": True})
        yield settings, paths, app, report, feast
    finally:
        runtime.stop(feast.pid_path)
        r.flushdb()
        es = loaders.es_index.connect(settings, timeout=30)
        es.indices.delete(index=f"{settings.es_index}_*", ignore_unavailable=True)
        try:
            import tritonclient.grpc as grpcclient

            grpcclient.InferenceServerClient(settings.triton_grpc_url).unload_model(settings.triton_model)
        finally:
            for repo in (native_model_repository(serving_root), docker_model_repository(serving_root)):
                import shutil

                shutil.rmtree(repo / settings.triton_model, ignore_errors=True)


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
    seen = io.read_pickle(paths.user_filter, "s2_term_trans.py")
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


@pytest.mark.parametrize("kwargs, field", [
    ({"data": "{not json", "content_type": "application/json"}, "body"),
    ({"json": {"user": 1}}, "userid"),
    ({"json": {"userid": "abc"}}, "userid"),
    ({"json": {"userid": 1, "size": -3}}, "size"),
])
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
