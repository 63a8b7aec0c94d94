"""docker-compose.yml agrees with the native runtime: same versions, ports and variable names."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml

from mlrec.core.paths import REPO_ROOT
from mlrec.core.settings import CLUSTER_NODES, Settings
from mlrec_runtime.elasticsearch_server import CLUSTER_NAME, ES_VERSION, node_name
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
NGINX_CONF = REPO_ROOT / "deploy" / "nginx" / "nginx.conf"
SINGLE_SERVICES = {"redis", "elasticsearch", "feast", "feast-push", "triton"}
CLUSTER_SERVICES = {
    "setup",
    "es-2",
    "es-3",
    "redis-replica",
    "feast-2",
    "triton-2",
    "recommender-1",
    "recommender-2",
    "nginx",
}
RECOMMENDERS = ("recommender-1", "recommender-2")


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
    services = compose["services"]
    assert set(services) == SINGLE_SERVICES | CLUSTER_SERVICES
    # plain `docker compose up` starts exactly the five services it always did
    assert {name for name, service in services.items() if "profiles" not in service} == SINGLE_SERVICES
    assert all(services[name]["profiles"] == ["cluster"] for name in CLUSTER_SERVICES)
    for name, service in services.items():
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


# -- the cluster profile ---------------------------------------------------------------------------------
def _nodes(compose: dict, image: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """The services running ``image`` (a prefix), in file order (the tier's first node first)."""
    return [n for n, s in compose["services"].items() if s["image"].startswith(image) and n not in exclude]


def _es_nodes(compose: dict) -> list[str]:
    return _nodes(compose, "docker.elastic.co/elasticsearch/", exclude=("setup",))


def _feast_nodes(compose: dict) -> list[str]:
    return _nodes(compose, "feastdev/feature-server:", exclude=("feast-push",))


def _triton_nodes(compose: dict) -> list[str]:
    return _nodes(compose, "nvcr.io/nvidia/tritonserver:")


def test_the_cluster_profile_has_the_native_cluster_shape(compose):
    c = Settings(profile="cluster")
    assert len(_es_nodes(compose)) == c.nodes("elasticsearch") == CLUSTER_NODES["elasticsearch"]
    assert len(_feast_nodes(compose)) == c.nodes("feast")
    assert len(_triton_nodes(compose)) == c.nodes("triton")
    assert _es_nodes(compose)[0] == "elasticsearch"  # node es-1 is the default service itself
    assert _feast_nodes(compose)[0] == "feast" and _triton_nodes(compose)[0] == "triton"
    s = compose["services"]
    # the second feature server and Triton are copies of the first (YAML merge), on other host ports
    for first, second in (("feast", "feast-2"), ("triton", "triton-2")):
        same = {k: v for k, v in s[first].items() if k not in ("ports", "depends_on")}
        assert {k: v for k, v in s[second].items() if k in same} == same, second
    assert s["feast-2"]["depends_on"] == {"feast": {"condition": "service_healthy"}}  # feast creates the registry


def test_cluster_ports_are_the_native_cluster_profiles(compose):
    """Host ports of the profile's nodes = Settings(profile="cluster")'s, so host-side loaders reach them."""
    c, s = Settings(profile="cluster"), compose["services"]
    es_ports = [c.es_node_ports(i)[0] for i in range(c.nodes("elasticsearch"))]
    assert [_published(s[n])[9200][1] for n in _es_nodes(compose)] == es_ports
    assert [_published(s[n])[6566][1] for n in _feast_nodes(compose)] == [
        c.feast_node_port(i) for i in range(c.nodes("feast"))
    ]
    container = {"http": 8000, "grpc": 8001, "metrics": 8002}
    for i, name in enumerate(_triton_nodes(compose)):
        published = _published(s[name])
        assert {kind: published[port][1] for kind, port in container.items()} == c.triton_node_ports(i), name
    assert _published(s["redis-replica"]) == {6379: ("MLREC_REDIS_REPLICA_PORT", c.redis_replica_port)}
    assert _published(s["nginx"]) == {80: ("MLREC_SERVER_PORT", c.server_port)}
    # the extra nodes' variables are compose's only: Settings derives those ports from the first ones
    extra = {var for n in CLUSTER_SERVICES if "ports" in s[n] for var, _ in _published(s[n]).values()}
    assert extra == {
        "MLREC_ES_2_PORT",
        "MLREC_ES_3_PORT",
        "MLREC_FEAST_2_PORT",
        "MLREC_TRITON_2_HTTP_PORT",
        "MLREC_TRITON_2_GRPC_PORT",
        "MLREC_TRITON_2_METRICS_PORT",
        "MLREC_REDIS_REPLICA_PORT",
        "MLREC_SERVER_PORT",
    }
    moved = Settings.from_env({var: "1" for var in extra - {"MLREC_SERVER_PORT"}}, env_file=None)
    assert moved == Settings.from_env({}, env_file=None)


def test_the_recommenders_reach_every_node_of_the_profile(compose):
    c, s = Settings(profile="cluster"), compose["services"]
    for name in RECOMMENDERS:
        env = s[name]["environment"]
        assert env["MLREC_PROFILE"] == "cluster" and env["MLREC_DATA_DIR"] == "/data"
        assert env["ELASTIC_PASSWORD"].startswith("${ELASTIC_PASSWORD:?")
        got = Settings.from_env({k: str(v) for k, v in env.items()}, env_file=None)
        assert got.es_urls == [f"http://{n}:9200" for n in _es_nodes(compose)]
        assert got.feast_urls == [f"http://{n}:6566" for n in _feast_nodes(compose)]
        assert got.triton_grpc_urls == [f"{n}:8001" for n in _triton_nodes(compose)]
        assert (len(got.es_urls), len(got.feast_urls), len(got.triton_grpc_urls)) == (
            c.nodes("elasticsearch"),
            c.nodes("feast"),
            c.nodes("triton"),
        )
        assert got.feast_push_url == "http://feast-push:6566"
        assert (got.host, got.redis_port) == ("redis", 6379)  # the container port, whatever the host's
        assert set(s[name]["depends_on"]) >= {"redis", *_es_nodes(compose), *_feast_nodes(compose), "feast-push"}
        assert set(s[name]["depends_on"]) >= set(_triton_nodes(compose))
        assert ".:/app:ro" in s[name]["volumes"]
        assert "/healthz" in " ".join(s[name]["healthcheck"]["test"])


def _recommender_script(service: dict) -> tuple[str, list[str]]:
    """The start script (compose's ``$$`` unescaped) and the arguments it passes on to s1_server.py."""
    command = service["command"]
    assert command[:2] == ["sh", "-c"], command
    return command[2].replace("$$", "$"), command[4:]


def test_the_recommenders_install_the_pinned_online_dependencies(compose):
    s = compose["services"]
    script, args = _recommender_script(s["recommender-1"])
    assert _recommender_script(s["recommender-2"])[0] == script
    assert "exec python online/main/s1_server.py --host 0.0.0.0 --port 5000" in script
    # one event worker (recommender-1's): two could push a user's Feast row out of order
    assert args == [] and _recommender_script(s["recommender-2"])[1] == ["--no-event-worker"]
    match = re.search(r'pins="([^"]+)"', script)
    assert match, "the start script names its pins"
    pins = match.group(1).split()
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert set(pins) <= set(pyproject), set(pins) - set(pyproject)
    # every project dependency the online path imports (in a fresh interpreter), and gunicorn, is pinned
    probe = (
        "import json, sys, importlib.metadata as md, mlrec.online.app, mlrec.online.event_worker;"
        "dists = md.packages_distributions();"
        "print(json.dumps(sorted({d.lower() for m in list(sys.modules) for d in dists.get(m.split('.')[0], [])})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    imported = {_dist(name) for name in json.loads(out.stdout)}
    needed = {_dist(dep) for dep in pyproject if _dist(dep) in imported} | {"gunicorn"}
    assert needed == {_dist(pin) for pin in pins}


def _dist(requirement: str) -> str:
    """The normalized distribution name of ``name[extra]==version`` (PEP 503)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\[=]", requirement)[0]).lower()


def _es_env_of_script(script: str) -> dict[str, str]:
    """The settings es-1's start script exports before the image's entrypoint (``env name=value ...``)."""
    tokens = shlex.split(script.replace("\\\n", " ").split("exec env ", 1)[1].split("\n", 1)[0])
    return dict(t.split("=", 1) for t in tokens if "=" in t)


def test_elasticsearch_nodes_form_one_cluster(compose):
    """es-1 (the default service) and es-2/es-3 agree on the cluster; only es-1 may bootstrap it."""
    s = compose["services"]
    es1 = s["elasticsearch"]
    # plain `docker compose up`: still the single node, no transport TLS
    assert es1["environment"]["discovery.type"] == "single-node"
    assert es1["environment"]["xpack.security.transport.ssl.enabled"] == "false"
    assert "es-data:/usr/share/elasticsearch/data" in es1["volumes"]
    script = es1["command"][2].replace("$$", "$")
    cluster = {**es1["environment"], **_es_env_of_script(script)}
    nodes = _es_nodes(compose)
    envs = {"elasticsearch": cluster, **{n: s[n]["environment"] for n in nodes[1:]}}
    for i, name in enumerate(nodes):
        env = envs[name]
        assert env["node.name"] == node_name(i)
        assert env["cluster.name"] == CLUSTER_NAME
        assert set(env["discovery.seed_hosts"].split(",")) == set(nodes)
        assert env["xpack.security.transport.ssl.enabled"] == "true"
        assert env["xpack.security.transport.ssl.verification_mode"] == "certificate"
        assert env["xpack.security.transport.ssl.certificate_authorities"] == "certs/ca/ca.crt"
        assert env["xpack.security.transport.ssl.key"] == f"certs/{node_name(i)}/{node_name(i)}.key"
        assert env["xpack.security.transport.ssl.certificate"] == f"certs/{node_name(i)}/{node_name(i)}.crt"
        assert env["ELASTIC_PASSWORD"].startswith("${ELASTIC_PASSWORD:?")
        assert "es-certs:/usr/share/elasticsearch/config/certs" in s[name]["volumes"]
    # es-1 alone lists itself; the others have no initial_master_nodes, so they never bootstrap a cluster
    assert cluster["cluster.initial_master_nodes"] == node_name(0)
    assert all("cluster.initial_master_nodes" not in envs[n] for n in nodes[1:])
    assert cluster["discovery.type"] == "multi-node"
    # the cluster's data is never the single node's: each node has its own volume
    data = [cluster["path.data"]] + [
        next(v for v in s[n]["volumes"] if v.endswith(":/usr/share/elasticsearch/data")) for n in nodes[1:]
    ]
    assert cluster["path.data"] == "/usr/share/elasticsearch/cluster-data"
    assert "es-1-cluster-data:/usr/share/elasticsearch/cluster-data" in es1["volumes"]
    assert len(set(data)) == len(nodes)
    # the setup service writes a certificate for every node name
    setup = s["setup"]["command"][2]
    assert all(f"name: {node_name(i)}" in setup for i in range(len(nodes)))
    for name in nodes[1:]:
        assert s[name]["depends_on"]["setup"] == {"condition": "service_completed_successfully"}


# bash, like the image's entrypoint: dash drops environment variables whose names hold dots
FAKE_ENTRYPOINT = """#!/bin/bash
echo "args: $*"
env | grep -E '^[a-z0-9_]+[.][a-z0-9_.]+=' | sort
"""


@pytest.mark.parametrize("profile", ["", "single", "cluster"])
def test_es1_start_script(compose, tmp_path, profile):
    """The `elasticsearch` service's script, run with bash and a stand-in for the image's entrypoint:
    unchanged single node unless MLREC_PROFILE=cluster; then node es-1 of the cluster."""
    es1 = compose["services"]["elasticsearch"]
    fake = tmp_path / "entrypoint.sh"
    fake.write_text(FAKE_ENTRYPOINT)
    fake.chmod(0o755)
    script = es1["command"][2].replace("$$", "$").replace("/usr/local/bin/docker-entrypoint.sh", str(fake))
    home = tmp_path / "home"
    (home / "config" / "certs" / "es-1").mkdir(parents=True)
    (home / "config" / "certs" / "es-1" / "es-1.key").write_text("")
    (home / "cluster-data").mkdir()
    env = {k: str(v) for k, v in es1["environment"].items() if "${" not in str(v)}
    env.update(PATH=os.environ["PATH"], MLREC_PROFILE=profile)
    out = subprocess.run(["bash", "-c", script], env=env, cwd=home, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "args: eswrapper"
    got = dict(line.split("=", 1) for line in lines[1:])
    if profile != "cluster":
        assert got == {k: v for k, v in env.items() if "." in k}
    else:
        assert got["discovery.type"] == "multi-node" and got["cluster.initial_master_nodes"] == "es-1"
        assert got["xpack.security.transport.ssl.enabled"] == "true"
        # without the setup service's certificate it gives up (here after 2 s instead of 300) and says why
        (home / "config" / "certs" / "es-1" / "es-1.key").unlink()
        quick = script.replace("seq 300", "seq 2").replace("= 300 ]", "= 2 ]")
        out = subprocess.run(["bash", "-c", quick], env=env, cwd=home, capture_output=True, text=True, timeout=30)
        assert out.returncode == 1 and "COMPOSE_PROFILES=cluster" in out.stderr and "args:" not in out.stdout


def _nginx_blocks(conf: str, head: str) -> str:
    """The body of the block opened by ``head`` (e.g. ``location = /ml/event``); blocks hold no others."""
    match = re.search(re.escape(head) + r"\s*\{([^{}]*)\}", conf)
    assert match, head
    return match.group(1)


def _directive(block: str, name: str) -> list[str]:
    lines = [line.split("#")[0].strip() for line in block.splitlines()]
    found = [line for line in lines if line.startswith(name + " ")]
    assert len(found) == 1, (name, found)
    return found[0].rstrip(";").split()[1:]


def test_nginx_balances_the_recommenders_and_never_resends_an_event(compose):
    conf = NGINX_CONF.read_text()
    nginx = compose["services"]["nginx"]
    assert "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    upstream = _nginx_blocks(conf, "upstream recommenders")
    servers = [line.split()[1] for line in upstream.splitlines() if line.strip().startswith("server ")]
    assert servers == [f"{name}:5000" for name in RECOMMENDERS]  # s1_server.py --port 5000 in each
    assert set(nginx["depends_on"]) == set(RECOMMENDERS)
    rec = _directive(_nginx_blocks(conf, "location = /ml/rec"), "proxy_next_upstream")
    assert {"error", "timeout", "non_idempotent"} <= set(rec)
    event = _nginx_blocks(conf, "location = /ml/event")
    assert _directive(event, "proxy_pass") == ["http://recommenders"]
    # without non_idempotent nginx never sends a POST that reached one recommender to another one
    assert "non_idempotent" not in _directive(event, "proxy_next_upstream")
    assert "non_idempotent" not in _directive(_nginx_blocks(conf, "location /"), "proxy_next_upstream")
    health = " ".join(nginx["healthcheck"]["test"])
    assert "/nginx-health" in health and "location = /nginx-health" in conf


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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLREC_", "COMPOSE_")) and k != "ELASTIC_PASSWORD"}
    empty_env = tmp_path / "empty.env"  # instead of a developer's .env
    empty_env.write_text("")

    def compose(*args: str, password: str | None = "s3cret", env_file: Path | None = None):
        files = ["-f", str(COMPOSE)] + (["--env-file", str(env_file)] if env_file else [])
        extra = {"ELASTIC_PASSWORD": password} if password else {}
        return subprocess.run(
            [*cli, *files, *args], cwd=REPO_ROOT, capture_output=True, text=True, env={**env, **extra}
        )

    ok = compose("config", "--quiet")
    assert ok.returncode == 0, ok.stderr
    cluster = compose("--profile", "cluster", "config", "--quiet", env_file=empty_env)
    assert cluster.returncode == 0, cluster.stderr
    services = compose("--profile", "cluster", "config", "--services", env_file=empty_env)
    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) == SINGLE_SERVICES | CLUSTER_SERVICES
    if cli[-1] == "compose":  # the legacy docker-compose lists every service, whatever the profiles
        plain = compose("config", "--services", env_file=empty_env)
        assert set(plain.stdout.split()) == SINGLE_SERVICES, plain.stderr
    missing = compose("config", "--quiet", password=None, env_file=empty_env)
    assert missing.returncode != 0 and "ELASTIC_PASSWORD" in missing.stderr
