"""The cluster profile: its shape, and that losing one node of a tier costs no request.

The drill runs against real nodes the native runtime starts beside the session's single-node services:
three Elasticsearch nodes of one cluster (on ports of their own), two feature servers for this test's
data dir, the session's Triton plus ``triton-2``, and a gunicorn server. Under load at concurrency 8 it
SIGKILLs one Elasticsearch node, one feature server and one Triton server in turn and starts each again.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
import requests

from mlrec.core.contracts import ITEM_LIST
from mlrec.core.paths import REPO_ROOT, SERVER_SCRIPT, Paths
from mlrec.core.settings import Settings
from mlrec.loaders.es_items import load_es
from mlrec.loaders.feast_features import load_feast
from mlrec.loaders.parity import check_parity
from mlrec.loaders.redis_users import load_redis
from mlrec.loaders.triton_model import load_triton
from mlrec.online import es_index
from mlrec_runtime import FEATURE_REPO, down, runtime, up
from mlrec_runtime.drill import compare, run_drill
from mlrec_runtime.elasticsearch_server import CLUSTER_NAME
from mlrec_runtime.feast_server import FeastServer
from mlrec_runtime.manager import make_services, service_names, start_service, wait_service
from mlrec_runtime.redis_server import RedisReplica
from mlrec_runtime.triton_server import docker_model_repository, native_model_repository

ES_NODES = [f"elasticsearch-{n + 1}" for n in range(Settings(profile="cluster").nodes("elasticsearch"))]


def test_the_cluster_profile_runs_every_tier_on_several_nodes():
    names = service_names(Settings(profile="cluster"))
    assert names == (
        "redis",
        "redis-replica",
        *ES_NODES,
        "feast",
        "feast-2",
        "feast-push",
        "triton",
        "triton-2",
    )
    assert service_names(Settings()) == ("redis", "elasticsearch", "feast", "feast-push", "triton")


def test_cluster_nodes_listen_where_the_clients_look(tmp_path: Path):
    settings = Settings(profile="cluster", runtime_dir=tmp_path)
    services = {s.name: s for s in make_services(settings)}
    assert [f"http://{settings.host}:{services[n].port}" for n in ES_NODES] == settings.es_urls
    assert [f"http://{settings.host}:{services[n].port}" for n in ("feast", "feast-2")] == settings.feast_urls
    assert [f"{settings.host}:{services[n].ports['grpc']}" for n in ("triton", "triton-2")] == settings.triton_grpc_urls
    assert services["redis-replica"].port == settings.redis_replica_port
    # each Elasticsearch node has its own folder, all share one unpacked distribution
    es = [services[n] for n in ES_NODES]
    assert len({s.dir for s in es}) == 3 and len({s.home for s in es}) == 1


def test_a_cluster_node_is_not_fooled_by_a_single_node_on_its_port(services: Settings):
    """Node 1 of the cluster on the session's single node's port: not healthy (another cluster), so
    ``up`` refuses the port instead of taking that node for a cluster member."""
    node = make_services(dataclasses.replace(services, profile="cluster"), ["elasticsearch-1"])[0]
    assert node.port == services.es_port and not node.healthy()


def test_answers_compare_exactly_except_swaps_within_float_noise():
    want = [(628, 0.08436873), (405, 0.08436870), (7, 0.05)]
    assert compare(list(want), want) == "same"
    assert compare([want[1], want[0], want[2]], want) == "tie swap"  # 3e-8 apart: batching noise
    assert compare([want[0], want[2], want[1]], want) == "changed"  # 405 moved below an item 0.03 lower
    assert compare([want[0], want[1], (8, 0.05)], want) == "changed"  # another item
    far = [(1, 0.5), (2, 0.4)]
    assert compare([far[1], far[0]], far) == "changed"


def _free_block(n: int, start: int) -> int:
    """The first port p >= start with p .. p + n - 1 all free on loopback."""
    for base in range(start, start + 500):
        if all(_free(base + i) for i in range(n)):
            return base
    raise RuntimeError(f"no {n} consecutive free ports from {start}")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def cluster(services: Settings, offline_run, tmp_path_factory) -> Iterator[tuple[Settings, Paths, dict]]:
    """The session's artifacts loaded into the cluster shape; yields (settings, paths, nodes by tier)."""
    paths = Paths(tmp_path_factory.mktemp("cluster-data") / "data")
    shutil.copytree(offline_run.paths.root, paths.root)  # its own Feast registry and online store
    tag = f"cl{np.random.default_rng().integers(1e9)}"
    es_base = _free_block(3, 19250)
    feast_ports = [_free_block(1, 19650), _free_block(1, 19660)]
    settings = dataclasses.replace(
        services,
        profile="cluster",
        es_port=es_base,
        es_transport_port=_free_block(3, es_base + 100),
        redis_db=2,
        es_index=f"mlrec_{tag}",
        triton_model=f"ml_rec_{tag}",
        feast_port=feast_ports[0],
        feast_push_port=feast_ports[0],
        feast_hosts=",".join(f"http://{services.host}:{p}" for p in feast_ports),
    )
    feast = [
        FeastServer(settings, paths, repo_dir=FEATURE_REPO, port=p, name=f"feast-{tag}-{i + 1}")
        for i, p in enumerate(feast_ports)
    ]
    serving_root = Paths.from_env().triton_dir  # the repositories the running Tritons serve
    r = redis.Redis(host=settings.host, port=settings.redis_port, db=settings.redis_db)
    r.flushdb()
    started = up(settings, ["redis-replica", *ES_NODES, "triton-2"])
    try:
        for server in feast:
            assert start_service(server)
        for server in feast:
            wait_service(server)
        load_redis(paths, settings)
        es_report = load_es(paths, settings)
        load_feast(paths, settings)
        load_triton(paths, settings, repo_root=serving_root)
        check_parity(paths, settings)
        nodes = {
            "elasticsearch": make_services(settings, ES_NODES),
            "feast": feast,
            "triton": make_services(settings, ["triton", "triton-2"]),
            "es_report": es_report,
        }
        yield settings, paths, nodes
    finally:
        for server in feast:
            runtime.stop(server.pid_path)
            shutil.rmtree(server.dir, ignore_errors=True)
        r.flushdb()
        r.close()
        try:
            es = es_index.connect(settings, timeout=30)
            es.indices.delete(index=f"{settings.es_index}_*", ignore_unavailable=True)
            es.close()
            import tritonclient.grpc as grpcclient

            for url in settings.triton_grpc_urls:
                grpcclient.InferenceServerClient(url).unload_model(settings.triton_model)
        finally:
            for repo in (native_model_repository(serving_root), docker_model_repository(serving_root)):
                shutil.rmtree(repo / settings.triton_model, ignore_errors=True)
            down(settings, started)


@pytest.fixture(scope="module")
def server(cluster, tmp_path_factory) -> Iterator[str]:
    """``online/main/s1_server.py`` (gunicorn) on the cluster, configured through the environment only."""
    settings, paths, _ = cluster
    port = _free_block(1, 19500)
    env = {
        **os.environ,
        "MLREC_PROFILE": "cluster",
        "MLREC_DATA_DIR": str(paths.root),
        "MLREC_RUNTIME_DIR": str(tmp_path_factory.mktemp("server-runtime")),
        "MLREC_REDIS_DB": str(settings.redis_db),
        "MLREC_ES_PORT": str(settings.es_port),
        "MLREC_ES_INDEX": settings.es_index,
        "MLREC_FEAST_HOSTS": settings.feast_hosts,
        "MLREC_FEAST_PUSH_PORT": "0",
        "MLREC_TRITON_MODEL": settings.triton_model,
        "MLREC_SERVER_PORT": str(port),
    }
    log = (tmp_path_factory.mktemp("server-log") / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / SERVER_SCRIPT), "--no-event-worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://{settings.host}:{port}"
    try:
        for _ in range(120):
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"the server did not get healthy; see {log.name}")
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
        log.close()


def test_the_item_index_has_a_replica_on_every_other_node(cluster):
    settings, _, nodes = cluster
    assert nodes["es_report"]["replicas"] == len(settings.es_urls) - 1 == 2
    es = es_index.connect(settings, timeout=30)
    health = es.cluster.health(index=f"{settings.es_index}_*")
    assert health["cluster_name"] == CLUSTER_NAME and health["number_of_nodes"] == 3
    assert health["status"] == "green" and health["active_shards"] == 3  # 1 primary + 2 replicas


def test_the_replica_follows_the_primary(cluster, unique: str):
    settings = cluster[0]
    replica = RedisReplica(settings)
    primary = redis.Redis(host=settings.host, port=settings.redis_port, db=settings.redis_db)
    copy = redis.Redis(host=settings.host, port=replica.port, db=settings.redis_db)
    primary.set(unique, "1")
    primary.wait(1, 5000)  # until the replica has acknowledged the write
    assert replica.linked() and copy.get(unique) == b"1"
    with pytest.raises(redis.ResponseError, match="read only replica"):
        copy.set(unique, "2")
    primary.delete(unique)


def test_killing_one_node_of_each_tier_under_load_costs_no_request(cluster, server):
    """Concurrency 8; SIGKILL one Elasticsearch node, one feature server, one Triton server in turn, then
    start each again: not one request fails and every answer is the one given before the drill."""
    nodes = cluster[2]
    users = list(range(1, 61))
    targets = [nodes["elasticsearch"][1], nodes["feast"][1], nodes["triton"][1]]
    stats = run_drill(server, users, targets, concurrency=8, steady_s=3.0, down_s=5.0)
    report = "\n".join(s.line() + (f" {list(s.error_samples)}" if s.error_samples else "") for s in stats)
    print(report)
    assert [s.phase for s in stats][:4] == [
        "steady",
        *(f"{targets[0].name} {p}" for p in ("killed", "restarting", "back")),
    ]
    assert all(s.requests > 0 for s in stats), report
    assert sum(s.failed for s in stats) == 0, report
    assert sum(s.changed for s in stats) == 0, report  # tie swaps (float noise of batching) are reported only


def test_every_node_of_a_tier_down_is_a_503_naming_it(cluster, server):
    """Both feature servers killed: the answer is a 503 naming Feast, within the request budget."""
    settings, _, nodes = cluster
    for node in nodes["feast"]:
        runtime.kill(node.pid_path)
    try:
        start = time.perf_counter()
        resp = requests.post(f"{server}/ml/rec", json={"userid": 1}, timeout=30)
        seconds = time.perf_counter() - start
        assert resp.status_code == 503 and resp.json()["dependency"] == "feast", resp.text
        assert seconds < settings.request_budget_s + 1
    finally:
        for node in nodes["feast"]:
            start_service(node)
        for node in nodes["feast"]:
            wait_service(node)
    assert ITEM_LIST in requests.post(f"{server}/ml/rec", json={"userid": 1}, timeout=30).json()
