"""Test-wide fixtures.

Tests mirror the package (tests/core, tests/offline, tests/online, ...). A test that uses the real
services (the ``services`` fixture, directly or through ``chain``) is marked ``integration``
automatically, so ``pytest -m "not integration"`` runs only the fast ones.

``offline_run`` builds the small synthetic offline pipeline once per session, with no service; the
offline tests read it and ``chain`` loads the same artifacts into the services, so the pipeline is
trained once per run, not once per consumer.

``services`` runs the native runtime's ``up`` (a no-op when ``make services-up`` already ran) and,
at the end, stops only what it started itself, so a developer's running stack is left alone.
Tests must not clobber the demo's data: unique index names, key prefixes, model names and a temp
feature repository.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
import redis

from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.data import prepare_dataset, write_marker
from mlrec.loaders.es_items import load_es
from mlrec.loaders.feast_features import load_feast
from mlrec.loaders.parity import check_parity
from mlrec.loaders.redis_users import load_redis
from mlrec.loaders.triton_model import load_triton
from mlrec.offline import pipeline
from mlrec.offline.train import TrainConfig
from mlrec.online import es_index
from mlrec.online.app import create_app
from mlrec.online.event_worker import serve
from mlrec.online.feast_store import FeastClient, push_offline_users
from mlrec_runtime import FEATURE_REPO, down, runtime, up
from mlrec_runtime.feast_server import FeastServer
from mlrec_runtime.manager import start_service, wait_service
from mlrec_runtime.triton_server import docker_model_repository, native_model_repository


@pytest.fixture(scope="session")
def services() -> Iterator[Settings]:
    settings = Settings.from_env()
    started = up(settings)
    try:
        yield settings
    finally:
        if started:
            down(settings, started)


@pytest.fixture
def free_port() -> int:
    """A loopback port nobody listens on, for a second server a test starts itself."""
    return _free_port()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for anything a test creates in a shared server."""
    return f"mlrec-test-{uuid.uuid4().hex[:10]}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class OfflineRun:
    """The offline artifacts of one small planted synthetic dataset, and what each step returned.

    ``report`` maps a step to the fields its ``pipeline.run_*`` returned: split, terms, term_recall,
    mf, features, rank. It is read-only because every consumer in the session shares it.
    """

    paths: Paths
    report: Mapping[str, Any]
    cfg: TrainConfig
    scale: int
    seed: int


@pytest.fixture(scope="session")
def offline_run(tmp_path_factory) -> OfflineRun:
    """data -> split -> terms -> term recall -> vectors -> item recall -> features -> rankers, in a temp data dir, once.

    40k synthetic ratings (~240 users, ~600 items) with planted taste: big enough for the models to
    learn something checkable, small enough for seconds on 2 cores. Needs no service, so the offline
    tests run under ``-m "not integration"``.
    """
    scale, seed = 40_000, 7
    paths = Paths(tmp_path_factory.mktemp("pipeline-data"))
    raw = prepare_dataset("synthetic", paths, scale=scale, seed=seed)
    write_marker(paths, "synthetic", raw, scale=scale, seed=seed)
    cfg = TrainConfig(epochs=30, batch_size=512, patience=3)  # small data: smaller batches, more steps
    report = {
        "split": pipeline.run_split(paths),
        "terms": pipeline.run_terms(paths),
        "term_recall": pipeline.run_term_recall(paths),
        "mf": pipeline.run_vector_recall(paths, cfg),
        "item_recall": pipeline.run_item_recall(paths),
        "features": pipeline.run_features(paths),
        "rank": pipeline.run_rank_train(paths, cfg),
    }
    return OfflineRun(paths, MappingProxyType(report), cfg, scale, seed)


@pytest.fixture(scope="session")
def chain(services, offline_run):
    """The whole chain: the session's offline artifacts loaded into the real services, then the Flask app.

    Isolation from a developer's running demo: Redis db 1, a unique Elasticsearch alias, a unique
    Triton model name, and a second `feast serve` on a free port for the temp data dir.
    Yields (settings, paths, app, report, feast_server); ``report`` holds the offline steps' fields
    plus each loader's (redis, es, feast, triton, parity).
    """
    paths = offline_run.paths
    report: dict[str, Any] = dict(offline_run.report)
    tag = f"e2e{np.random.default_rng().integers(1e9)}"
    settings = dataclasses.replace(
        services, redis_db=1, es_index=f"mlrec_{tag}", triton_model=f"ml_rec_{tag}", feast_port=_free_port()
    )
    settings = dataclasses.replace(settings, feast_push_port=settings.feast_port)  # the worker pushes there too
    feast = FeastServer(settings, paths, repo_dir=FEATURE_REPO, port=settings.feast_port, name=f"feast-{tag}")
    serving_root = Paths.from_env().triton_dir  # the repositories the running Triton serves
    r = redis.Redis(host=settings.host, port=settings.redis_port, db=settings.redis_db)
    r.flushdb()
    try:
        assert start_service(feast)
        wait_service(feast)
        report["redis"] = load_redis(paths, settings)
        report["es"] = load_es(paths, settings)
        report["feast"] = load_feast(paths, settings)
        report["triton"] = load_triton(paths, settings, repo_root=serving_root)
        report["parity"] = check_parity(paths, settings)
        app = create_app({"SETTINGS": settings, "PATHS": paths, "TESTING": True})
        yield settings, paths, app, report, feast
    finally:
        runtime.stop(feast.pid_path)
        shutil.rmtree(feast.dir, ignore_errors=True)  # its log and pid file
        r.flushdb()
        r.close()
        es = es_index.connect(settings, timeout=30)
        es.indices.delete(index=f"{settings.es_index}_*", ignore_unavailable=True)
        es.close()
        try:
            import tritonclient.grpc as grpcclient

            grpcclient.InferenceServerClient(settings.triton_grpc_url).unload_model(settings.triton_model)
        finally:
            for repo in (native_model_repository(serving_root), docker_model_repository(serving_root)):
                shutil.rmtree(repo / settings.triton_model, ignore_errors=True)


@pytest.fixture
def chain_redis_restored(chain) -> Iterator[redis.Redis]:
    """A client of the chain's Redis db; every key is put back as it was after the test (tests that post
    events change users, and other tests compare Redis with the offline artifacts)."""
    settings = chain[0]
    client = redis.Redis(host=settings.host, port=settings.redis_port, db=settings.redis_db, socket_timeout=10.0)
    saved = {key: client.dump(key) for key in client.scan_iter(count=1000)}
    try:
        yield client
    finally:
        client.flushdb()
        for key, dump in saved.items():
            client.restore(key, 0, dump, replace=True)
        client.close()


@pytest.fixture
def event_worker(chain, chain_redis_restored) -> Iterator[Settings]:
    """An event worker for the chain, as ``s1_server.py`` starts one beside the server (here a thread of
    the test process, on the real Redis and Feast); afterwards every offline user's Feast row is put
    back (events push new ones; other tests compare Feast with the offline tables). Yields the settings."""
    settings, paths = chain[0], chain[1]
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(settings, paths, stop.is_set), name="event-worker", daemon=True)
    thread.start()
    try:
        yield settings
    finally:
        stop.set()
        thread.join(30)
        push_offline_users(FeastClient(settings.feast_url, timeout_s=60.0), paths)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "services" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
