"""Each real server, over its real protocol: Redis, Elasticsearch 8, Feast's HTTP server, Triton gRPC."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import redis
import requests
from elasticsearch import Elasticsearch
from onnx import TensorProto, helper, numpy_helper

from mlrec.core.contracts import TRITON_INPUT, TRITON_OUTPUT
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.loaders.triton_repo import write_model_repositories
from mlrec_runtime import FEATURE_REPO, FeastCommandError, run_feast, runtime
from mlrec_runtime.feast_server import REGISTRY_TTL_S, FeastServer
from mlrec_runtime.manager import start_service, status, wait_service
from mlrec_runtime.triton_server import docker_model_repository, native_model_repository


def test_every_service_reports_running_with_its_version(services: Settings):
    rows = {row.name: row for row in status(services)}
    assert set(rows) == {"redis", "elasticsearch", "feast", "feast-push", "triton"}
    for row in rows.values():
        assert row.state in ("running", "external"), row.line()
        assert row.version, row.line()
    assert rows["elasticsearch"].version.startswith("8.")
    assert rows["triton"].version == "2.51.0"


# -- Redis --------------------------------------------------------------------------------------


def test_redis_set_get(services: Settings, unique: str):
    client = redis.Redis(host=services.host, port=services.redis_port, socket_timeout=services.timeout_s)
    key = f"{unique}:user:1"
    try:
        assert client.set(key, "1,5,7", ex=60)
        assert client.get(key) == b"1,5,7"
    finally:
        client.delete(key)
    assert client.get(key) is None


# -- Elasticsearch -------------------------------------------------------------------------------


def _es(settings: Settings) -> Elasticsearch:
    auth = (settings.es_user, settings.es_password) if settings.es_password else None
    return Elasticsearch(settings.es_url, basic_auth=auth, request_timeout=30)


def _unit(i: int, dim: int = 16) -> list[float]:
    vec = np.zeros(dim, dtype=np.float32)
    vec[i] = 1.0
    return vec.tolist()


def test_es_knn_and_terms_in_one_request(services: Settings, unique: str):
    es = _es(services)
    index = unique
    es.indices.create(
        index=index,
        mappings={
            "properties": {
                "genres": {"type": "keyword"},
                "vector": {
                    "type": "dense_vector",
                    "dims": 16,
                    "index": True,
                    "similarity": "cosine",
                    "index_options": {"type": "hnsw", "m": 16, "ef_construction": 100},
                },
            }
        },
        settings={"number_of_shards": 1, "number_of_replicas": 0},
    )
    try:
        mixed = (0.8 * np.array(_unit(0)) + 0.6 * np.array(_unit(1))).tolist()
        docs = {
            "d0": (["Action"], _unit(0)),
            "d1": (["Comedy"], _unit(1)),
            "d2": (["Comedy", "Drama"], _unit(2)),
            "d3": (["Drama"], mixed),
            "d4": (["Action"], _unit(3)),
        }
        for doc_id, (genres, vector) in docs.items():
            es.index(index=index, id=doc_id, document={"genres": genres, "vector": vector})
        es.indices.refresh(index=index)
        mapping = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]["vector"]
        assert mapping["type"] == "dense_vector" and mapping["index_options"]["type"] == "hnsw"

        query = (np.array(_unit(0)) + 0.1 * np.array(_unit(2))).tolist()  # cos: d0 .995, d3 .796, d2 .0995
        # 1) kNN + a terms query in one request: hits are the union of both (vector recall + term recall)
        res = es.search(
            index=index,
            knn={"field": "vector", "query_vector": query, "k": 2, "num_candidates": 10},
            query={"terms": {"genres": ["Comedy"]}},
            size=10,
            source=False,
        )
        assert {h["_id"] for h in res["hits"]["hits"]} == {"d0", "d3", "d1", "d2"}
        # 2) kNN filtered by terms: only Comedy/Drama items, nearest first
        res = es.search(
            index=index,
            knn={
                "field": "vector",
                "query_vector": query,
                "k": 2,
                "num_candidates": 10,
                "filter": {"terms": {"genres": ["Comedy", "Drama"]}},
            },
            size=2,
            source=False,
        )
        assert [h["_id"] for h in res["hits"]["hits"]] == ["d3", "d2"]
        # cosine kNN score = (1 + cos) / 2
        assert res["hits"]["hits"][0]["_score"] == pytest.approx((1 + 0.8 / np.sqrt(1.01)) / 2, rel=1e-4)
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)


def test_es_password_is_enforced_when_set(services: Settings):
    if not services.es_password:
        pytest.skip("ELASTIC_PASSWORD is empty: the native node runs without security")
    anonymous = requests.get(f"{services.es_url}/_cluster/health", timeout=5)
    assert anonymous.status_code == 401
    wrong = requests.get(f"{services.es_url}/_cluster/health", auth=(services.es_user, "wrong-password"), timeout=5)
    assert wrong.status_code == 401
    assert _es(services).cluster.health()["status"] in ("green", "yellow")


# -- Feast ---------------------------------------------------------------------------------------

FEATURES_PY = """
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float32, Int64

user = Entity(name="user", join_keys=["userid"], value_type=ValueType.INT64)
source = FileSource(path="{parquet}", timestamp_field="event_timestamp")
user_fv = FeatureView(
    name="user_fv", entities=[user], ttl=timedelta(days=3650), online=True, source=source,
    schema=[Field(name="age", dtype=Int64), Field(name="score", dtype=Float32)],
)
"""


def _online_features(url: str, userids: list[int]) -> requests.Response:
    return requests.post(
        f"{url}/get-online-features",
        timeout=5,
        json={"features": ["user_fv:age", "user_fv:score"], "entities": {"userid": userids}},
    )


def test_feast_serves_a_tiny_feature_view_over_http(services: Settings, unique: str, tmp_path: Path, free_port: int):
    """Start from an empty repo (as the project's is before features.py exists), then apply a view."""
    repo, data = tmp_path / "feature_repo", tmp_path / "data"
    repo.mkdir()
    shutil.copy(FEATURE_REPO / "feature_store.yaml", repo / "feature_store.yaml")
    paths = Paths(data)
    server = FeastServer(services, paths, repo_dir=repo, port=free_port, name=unique)
    try:
        assert start_service(server)
        wait_service(server)  # serves with an empty registry
        url = f"http://{services.host}:{server.port}"

        parquet = data / "user.parquet"
        pd.DataFrame(
            {
                "userid": np.array([1, 2, 3], dtype=np.int64),
                "age": np.array([25, 35, 45], dtype=np.int64),
                "score": np.array([0.5, 1.25, 2.0], dtype=np.float32),
                "event_timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"], utc=True),
            }
        ).to_parquet(parquet)
        (repo / "features.py").write_text(FEATURES_PY.format(parquet=parquet))
        run_feast(["apply"], repo, services, paths)
        run_feast(["materialize-incremental", pd.Timestamp.now(tz="UTC").isoformat()], repo, services, paths)

        deadline = time.monotonic() + 4 * REGISTRY_TTL_S  # the server re-reads the registry, no restart
        resp = _online_features(url, [2, 3, 99])
        while resp.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            resp = _online_features(url, [2, 3, 99])
        assert resp.status_code == 200, resp.text
        body = resp.json()
        names = body["metadata"]["feature_names"]
        columns = dict(zip(names, body["results"], strict=True))  # feast picks the order
        assert columns["userid"]["values"] == [2, 3, 99]
        assert columns["age"]["values"] == [35, 45, None]
        assert columns["score"]["values"] == [1.25, 2.0, None]
        assert columns["age"]["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]

        no_json = requests.post(f"{url}/get-online-features", data=b'{"features": []}', timeout=5)
        assert no_json.status_code == 422  # feast needs Content-Type: application/json
    finally:
        runtime.stop(server.pid_path)
        shutil.rmtree(server.dir, ignore_errors=True)
    assert not runtime.port_open(services.host, server.port)


def test_run_feast_raises_with_feasts_output(services: Settings, tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(FEATURE_REPO / "feature_store.yaml", repo / "feature_store.yaml")
    (repo / "broken.py").write_text("raise RuntimeError('definitions are broken')\n")
    with pytest.raises(FeastCommandError, match="definitions are broken"):
        run_feast(["apply"], repo, services, Paths(tmp_path / "data"))


# -- Triton --------------------------------------------------------------------------------------


def _linear_onnx(path: Path, weights: np.ndarray, bias: float) -> None:
    """output = input @ weights + bias, with the served tensor names: a model whose exact output we can compute."""
    n = weights.shape[0]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [TRITON_INPUT, "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], [TRITON_OUTPUT]),
        ],
        "linear",
        [helper.make_tensor_value_info(TRITON_INPUT, TensorProto.FLOAT, [None, n])],
        [helper.make_tensor_value_info(TRITON_OUTPUT, TensorProto.FLOAT, [None, 1])],
        initializer=[
            numpy_helper.from_array(weights.reshape(n, 1).astype(np.float32), "W"),
            numpy_helper.from_array(np.array([bias], dtype=np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_triton_serves_onnx_over_grpc_and_loads_new_versions(services: Settings, unique: str, tmp_path: Path):
    import tritonclient.grpc as grpcclient

    model = unique.replace("-", "_")
    triton_dir = Paths.from_env().triton_dir
    client = grpcclient.InferenceServerClient(services.triton_grpc_url)
    x = np.array([[1, 2, 3, 4], [0, 0, 0, 0], [-1, 0.5, 2, 8]], dtype=np.float32)

    def infer() -> np.ndarray:
        inp = grpcclient.InferInput(TRITON_INPUT, list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = client.infer(model, [inp], outputs=[grpcclient.InferRequestedOutput(TRITON_OUTPUT)])
        return result.as_numpy(TRITON_OUTPUT)

    try:
        for version, (weights, bias) in enumerate([([1, 2, 3, 4], 0.5), ([0, 0, 1, -1], -2.0)], start=1):
            weights = np.array(weights, dtype=np.float32)
            _linear_onnx(tmp_path / f"v{version}.onnx", weights, bias)
            _, native_repo = write_model_repositories(
                tmp_path / f"v{version}.onnx", triton_dir, model, n_features=4, max_batch_size=64, version=version
            )
            assert native_repo == native_model_repository(triton_dir)
            client.load_model(model)  # explicit mode: picks up the newest version without a restart
            assert client.is_model_ready(model)
            out = infer()
            assert out.shape == (3, 1) and out.dtype == np.float32
            np.testing.assert_array_equal(out[:, 0], x @ weights + np.float32(bias))
        config = client.get_model_config(model).config
        assert config.backend == "python" and config.max_batch_size == 64
    finally:
        try:
            client.unload_model(model)
        finally:
            shutil.rmtree(native_model_repository(triton_dir) / model, ignore_errors=True)
            shutil.rmtree(docker_model_repository(triton_dir) / model, ignore_errors=True)
