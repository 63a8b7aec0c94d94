"""docker-compose.yml agrees with the native runtime: same versions, ports and variable names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from mlrec.core.paths import REPO_ROOT
from mlrec.core.settings import Settings
from mlrec_runtime.elasticsearch_server import ES_VERSION
from mlrec_runtime.feast_server import (
    FEAST_VERSION,
    FEATURE_REPO,
    MAX_REQUESTS,
    ONLINE_STORES,
    REGISTRY_TTL_S,
    WORKERS,
)
from mlrec_runtime.redis_server import REDIS_VERSION
from mlrec_runtime.triton_server import TRITON_IMAGE_TAG

COMPOSE = REPO_ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _published(service: dict) -> dict[int, tuple[str, int]]:
    """container port -> (env var, default host port) from "127.0.0.1:${VAR:-default}:container"."""
    out = {}
    for spec in service["ports"]:
        match = re.fullmatch(r"127\.0\.0\.1:\$\{(\w+):-(\d+)\}:(\d+)", spec)
        assert match, f"port {spec!r} must bind loopback and read its host port from an env var"
        out[int(match.group(3))] = (match.group(1), int(match.group(2)))
    return out


def test_the_services_have_healthchecks(compose):
    assert set(compose["services"]) == {"redis", "elasticsearch", "feast", "feast-push", "triton"}
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"], name


def test_ports_and_env_names_match_settings(compose):
    d = Settings()
    s = compose["services"]
    assert _published(s["redis"]) == {6379: ("MLREC_REDIS_PORT", d.redis_port)}
    assert _published(s["elasticsearch"]) == {9200: ("MLREC_ES_PORT", d.es_port)}
    assert _published(s["feast"]) == {6566: ("MLREC_FEAST_PORT", d.feast_port)}
    assert _published(s["feast-push"]) == {6566: ("MLREC_FEAST_PUSH_PORT", d.feast_push_port)}
    assert _published(s["triton"]) == {
        8000: ("MLREC_TRITON_HTTP_PORT", d.triton_http_port),
        8001: ("MLREC_TRITON_GRPC_PORT", d.triton_grpc_port),
        8002: ("MLREC_TRITON_METRICS_PORT", d.triton_metrics_port),
    }
    # the env names compose reads are the ones Settings.from_env reads
    env = {
        "MLREC_REDIS_PORT": "1",
        "MLREC_ES_PORT": "2",
        "MLREC_FEAST_PORT": "3",
        "MLREC_TRITON_HTTP_PORT": "4",
        "MLREC_TRITON_GRPC_PORT": "5",
        "MLREC_TRITON_METRICS_PORT": "6",
        "MLREC_FEAST_PUSH_PORT": "7",
    }
    got = Settings.from_env(env)
    assert (
        got.redis_port,
        got.es_port,
        got.feast_port,
        got.triton_http_port,
        got.triton_grpc_port,
        got.triton_metrics_port,
        got.feast_push_port,
    ) == (1, 2, 3, 4, 5, 6, 7)


def test_images_pin_the_native_versions(compose):
    s = compose["services"]
    assert s["elasticsearch"]["image"] == f"docker.elastic.co/elasticsearch/elasticsearch:{ES_VERSION}"
    assert s["feast"]["image"] == s["feast-push"]["image"] == f"feastdev/feature-server:{FEAST_VERSION}"
    assert s["triton"]["image"] == f"nvcr.io/nvidia/tritonserver:{TRITON_IMAGE_TAG}"
    assert s["redis"]["image"].startswith(f"redis:{REDIS_VERSION}.")


def test_elasticsearch_password_is_required_from_env(compose):
    env = compose["services"]["elasticsearch"]["environment"]
    assert env["ELASTIC_PASSWORD"].startswith("${ELASTIC_PASSWORD:?")
    assert env["xpack.security.enabled"] == "true"


def test_feast_mounts_the_feature_repo_and_data_dir(compose):
    feast = compose["services"]["feast"]
    assert "./offline_to_online/rank/feature_repo:/feature_repo" in feast["volumes"]
    assert feast["environment"]["MLREC_DATA_DIR"] == "/data"
    assert any(v.endswith(":/data") and "MLREC_DATA_DIR" in v for v in feast["volumes"])
    triton = compose["services"]["triton"]
    assert any(v.endswith("/online/triton/model_repository:/models") for v in triton["volumes"])


def _serve_script(compose: dict) -> str:
    command = compose["services"]["feast"]["command"]
    assert command[:1] == ["sh"] and command[1].startswith("/feature_repo/"), command
    return (FEATURE_REPO / command[1].removeprefix("/feature_repo/")).read_text()


def test_compose_feast_serves_like_the_native_server(compose):
    """Same registry refresh (the loaders wait on it), workers and recycling as mlrec_runtime.feast_server."""
    script = _serve_script(compose)
    lines = script.replace("\\\n", " ").splitlines()  # continuation lines joined
    flags = next(line for line in lines if line.startswith("exec ") and " serve " in line).split()
    assert flags[flags.index("--registry_ttl_sec") + 1] == str(REGISTRY_TTL_S)
    assert flags[flags.index("--workers") + 1] == str(WORKERS)
    assert flags[flags.index("--max-requests") + 1] == str(MAX_REQUESTS)
    assert flags[flags.index("-p") + 1] == "6566"


FAKE_FEAST = """#!/bin/sh
echo "$(id -u):$(id -g) $*" >> "$FEAST_LOG"
"""


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root, as the container has")
@pytest.mark.parametrize("store", sorted(ONLINE_STORES))
def test_compose_feast_script_runs_feast_as_the_data_dir_owner(compose, store):
    """The service's script itself, run as root like the container, with a stand-in `feast` on PATH.

    It must create the data dirs (the Triton mount's too) owned by the data dir's owner and run
    `feast apply` (no registry yet) and `feast serve` as that owner, on the selected yaml.
    """
    assert compose["services"]["feast"]["user"] == "0:0"
    with tempfile.TemporaryDirectory() as tmp:  # not pytest's tmp_path: its parents are closed to other users
        _run_serve_script(compose, Path(tmp), store)


def _run_serve_script(compose: dict, tmp_path: Path, store: str) -> None:
    tmp_path.chmod(0o755)
    repo, data, bin_dir = tmp_path / "feature_repo", tmp_path / "data", tmp_path / "bin"
    for folder in (repo, data, bin_dir):
        folder.mkdir()
    os.chown(data, 4321, 4322)
    (repo / "compose_serve.sh").write_text(_serve_script(compose))
    for name in ONLINE_STORES.values():
        (repo / name).write_text("")
    feast = bin_dir / "feast"
    feast.write_text(FAKE_FEAST)
    feast.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    log = tmp_path / "feast.log"
    log.touch(mode=0o666)
    log.chmod(0o666)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "MLREC_DATA_DIR": str(data),
        "MLREC_FEAST_ONLINE_STORE": store,
        "FEAST_LOG": str(log),
    }
    out = subprocess.run(["sh", str(repo / "compose_serve.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for folder in ("online", "online/feast", "online/triton", "online/triton/model_repository"):
        st = (data / folder).stat()
        assert (st.st_uid, st.st_gid) == (4321, 4322), folder
    apply, serve = log.read_text().splitlines()
    yaml_file = repo / ONLINE_STORES[store]
    assert apply == f"4321:4322 -c {repo} -f {yaml_file} apply"
    assert serve.startswith(f"4321:4322 -c {repo} -f {yaml_file} serve -h 0.0.0.0 -p 6566 ")


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_validates(tmp_path):
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no docker compose client on this machine")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLREC_") and k != "ELASTIC_PASSWORD"}
    ok = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config", "--quiet"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**env, "ELASTIC_PASSWORD": "s3cret"},
    )
    assert ok.returncode == 0, ok.stderr
    empty_env = tmp_path / "empty.env"  # instead of a developer's .env
    empty_env.write_text("")
    missing = subprocess.run(
        [*cli, "-f", str(COMPOSE), "--env-file", str(empty_env), "config", "--quiet"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert missing.returncode != 0 and "ELASTIC_PASSWORD" in missing.stderr
