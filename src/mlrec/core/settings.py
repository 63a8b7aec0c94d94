"""Every setting the project reads from the environment: ports, hosts, credentials, the data dir, logging.

One object, built on demand (never at import), so the native runtime, the loaders, the Flask
service, the tests and ``docker-compose.yml`` agree on every port. No module reads an ``MLREC_*``
variable itself: it asks :class:`Settings`. Defaults are each server's
standard port. A git-ignored ``.env`` at the repository root is read too (the same file
``docker compose`` reads); real environment variables win over it. Secrets never live in code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlrec.core.errors import MlrecError

REPO_ROOT = Path(__file__).resolve().parents[3]
ENV_FILE = REPO_ROOT / ".env"
DEFAULT_DATA_DIR = REPO_ROOT / "data_exchange_center"
FEAST_CLI_MODES = ("auto", "native", "docker")  # how loaders run `feast apply` / `materialize`
PROFILES = ("single", "cluster")  # one node per service, or the scaled-out shape (docs/services.md)
# The cluster profile's shape and where each extra node listens, relative to the tier's first port, so
# the native runtime, docker-compose.yml's cluster profile and the clients agree on one table.
CLUSTER_NODES = {"elasticsearch": 3, "feast": 2, "triton": 2}
ES_NODE_PORT_STEP = 1  # Elasticsearch node i: HTTP es_port + i, transport es_transport_port + i
FEAST_NODE_PORT_STEP = 2  # feature server i: feast_port + 2i (feast_port + 1 is the push server's)
TRITON_NODE_PORT_STEP = 10  # Triton server i: each of its HTTP, gRPC and metrics ports + 10i
REDIS_REPLICA_PORT_OFFSET = 1  # the replica: redis_port + 1


class SettingsError(MlrecError, ValueError):
    """An environment variable (or ``.env`` line) holds a value of the wrong type."""


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines (``#`` comments, optional quotes); a missing file is empty.

    As ``docker compose`` reads the same file: `` #`` after an unquoted value starts a comment
    (``MLREC_FEAST_PUSH_PORT=6567   # pushes``), while a quoted value keeps every character."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if value[:1] in ("'", '"') and value[1:].find(value[0]) >= 0:
            value = value[1 : 1 + value[1:].find(value[0])]
        else:
            value = value.split(" #", 1)[0].split("\t#", 1)[0].strip()
        values[key.strip()] = value
    return values


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_db: int = 0  # tests use another db so they never touch the demo's users
    es_port: int = 9200
    es_transport_port: int = 9300  # node-to-node traffic of the cluster profile's Elasticsearch nodes
    es_user: str = "elastic"
    es_password: str = field(default="", repr=False)
    es_scheme: str = "http"
    es_index: str = "item_index"  # an alias; each load writes a new index behind it
    feast_port: int = 6566
    # the feature server the event worker pushes users' rows to: a second `feast serve` on the same
    # online store, at a lower CPU priority, so pushes do not slow /ml/rec's reads; 0 = the one at feast_port
    feast_push_port: int = 6567
    triton_http_port: int = 8000
    triton_grpc_port: int = 8001
    triton_metrics_port: int = 8002
    triton_model: str = "ml_rec"
    server_port: int = 5000  # the Flask recommender (POST /ml/rec)
    profile: str = "single"  # or "cluster": 3 Elasticsearch nodes, 2 feature servers, 2 Tritons, a Redis replica
    # Where the clients find each tier's nodes, comma-separated, when not on ``host`` at the profile's ports
    # (e.g. docker-compose's recommender containers: http://elasticsearch:9200,http://es-2:9200,...).
    es_hosts: str = ""  # Elasticsearch URLs
    feast_hosts: str = ""  # feature server URLs
    triton_hosts: str = ""  # Triton gRPC host:port
    feast_push_host: str = ""  # the push server's URL (default: host at feast_push_port)
    runtime_dir: Path = REPO_ROOT / ".runtime"
    timeout_s: float = 2.0  # per call to any service from the online path
    # all of one POST /ml/rec, failovers included: a call gets min(timeout_s, what is left of it)
    request_budget_s: float = 4.0
    es_ca_path: str = ""  # CA bundle for an https Elasticsearch; certificates are always verified over https
    admin_token: str = field(default="", repr=False)  # bearer token for /admin/*; unset = /admin/* is off
    max_body_bytes: int = 64 * 1024  # larger request bodies get 413
    # POST /ml/event takes up to 1,000 events (~100 bytes each) per request, so its own, larger limit
    max_event_body_bytes: int = 256 * 1024
    # POST /ml/event waits this long for the event worker to apply its events before it answers 503
    event_wait_s: float = 5.0
    # the event worker pushes the changed users' Feast rows at most this often (rows of a user coalesce)
    feature_push_interval_s: float = 0.5
    data_dir: Path = DEFAULT_DATA_DIR  # every artifact (data_exchange_center/)
    dataset: str = "ml-100k"  # what offline/preprocess/s0_get_data.py fetches without --dataset
    log_level: str = "WARNING"
    progress: bool = True  # tqdm bars on a terminal
    # processes for independent offline jobs: the two training moments of the feature step, the four
    # rankers (each single-threaded, see TrainConfig.threads); 1 = all in the calling process, in turn
    offline_workers: int = 2
    # where the prep steps (split, point-in-time counts, seed features) run: numpy, duckdb or spark
    engine: str = "numpy"
    # DuckDB's memory_limit ("2GB"; empty = DuckDB's default, 80% of RAM): above it DuckDB spills to disk
    duckdb_memory: str = ""
    spark_master: str = "local[*]"  # when the project starts Spark itself; spark-submit's --master wins
    spark_memory: str = "4g"  # the local driver's JVM heap (local mode runs the executors inside it)
    spark_partitions: int = 0  # spark.sql.shuffle.partitions; 0 = Spark's default (adaptive)
    feast_online_store: str = "sqlite"  # or "redis"
    feast_cli: str = "auto"  # native (the runtime's feast venv), docker (`docker compose exec feast`), auto

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: Path | None = ENV_FILE) -> Settings:
        """Settings from ``environ`` (default ``os.environ``) over ``env_file`` (None: no file)."""
        file_values = read_env_file(env_file) if env_file else {}
        env = {**file_values, **(os.environ if environ is None else environ)}

        def get(name: str, default):
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            if isinstance(default, bool):
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise SettingsError(f"environment variable {name}={raw!r}", "set it to 1/0, true/false or yes/no")
                return raw.lower() in ("1", "true", "yes")
            try:
                return type(default)(raw)
            except ValueError as exc:
                raise SettingsError(
                    f"environment variable {name}={raw!r}: not a {type(default).__name__}",
                    f"set {name} to a {type(default).__name__} in the environment or .env, or unset it",
                ) from exc

        d = cls()
        return cls(
            host=get("MLREC_HOST", d.host),
            redis_port=get("MLREC_REDIS_PORT", d.redis_port),
            redis_db=get("MLREC_REDIS_DB", d.redis_db),
            es_port=get("MLREC_ES_PORT", d.es_port),
            es_transport_port=get("MLREC_ES_TRANSPORT_PORT", d.es_transport_port),
            es_user=get("MLREC_ES_USER", d.es_user),
            es_password=get("ELASTIC_PASSWORD", d.es_password),
            es_scheme=get("MLREC_ES_SCHEME", d.es_scheme),
            es_index=get("MLREC_ES_INDEX", d.es_index),
            feast_port=get("MLREC_FEAST_PORT", d.feast_port),
            feast_push_port=get("MLREC_FEAST_PUSH_PORT", d.feast_push_port),
            triton_http_port=get("MLREC_TRITON_HTTP_PORT", d.triton_http_port),
            triton_grpc_port=get("MLREC_TRITON_GRPC_PORT", d.triton_grpc_port),
            triton_metrics_port=get("MLREC_TRITON_METRICS_PORT", d.triton_metrics_port),
            triton_model=get("MLREC_TRITON_MODEL", d.triton_model),
            server_port=get("MLREC_SERVER_PORT", d.server_port),
            profile=get("MLREC_PROFILE", d.profile),
            es_hosts=get("MLREC_ES_HOSTS", d.es_hosts),
            feast_hosts=get("MLREC_FEAST_HOSTS", d.feast_hosts),
            triton_hosts=get("MLREC_TRITON_HOSTS", d.triton_hosts),
            feast_push_host=get("MLREC_FEAST_PUSH_HOST", d.feast_push_host),
            runtime_dir=Path(get("MLREC_RUNTIME_DIR", str(d.runtime_dir))),
            timeout_s=get("MLREC_TIMEOUT_S", d.timeout_s),
            request_budget_s=get("MLREC_REQUEST_BUDGET_S", d.request_budget_s),
            es_ca_path=get("MLREC_ES_CA_PATH", d.es_ca_path),
            admin_token=get("MLREC_ADMIN_TOKEN", d.admin_token),
            max_body_bytes=get("MLREC_MAX_BODY_BYTES", d.max_body_bytes),
            max_event_body_bytes=get("MLREC_MAX_EVENT_BODY_BYTES", d.max_event_body_bytes),
            event_wait_s=get("MLREC_EVENT_WAIT_S", d.event_wait_s),
            feature_push_interval_s=get("MLREC_FEATURE_PUSH_INTERVAL_S", d.feature_push_interval_s),
            data_dir=Path(get("MLREC_DATA_DIR", str(d.data_dir))).resolve(),
            dataset=get("MLREC_DATASET", d.dataset),
            log_level=get("MLREC_LOG_LEVEL", d.log_level).upper(),
            progress=get("MLREC_PROGRESS", d.progress),
            offline_workers=max(1, get("MLREC_OFFLINE_WORKERS", d.offline_workers)),
            engine=get("MLREC_ENGINE", d.engine),
            duckdb_memory=get("MLREC_DUCKDB_MEMORY", d.duckdb_memory),
            spark_master=get("MLREC_SPARK_MASTER", d.spark_master),
            spark_memory=get("MLREC_SPARK_MEMORY", d.spark_memory),
            spark_partitions=get("MLREC_SPARK_PARTITIONS", d.spark_partitions),
            feast_online_store=get("MLREC_FEAST_ONLINE_STORE", d.feast_online_store),
            feast_cli=get("MLREC_FEAST_CLI", d.feast_cli),
        )

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise SettingsError(
                f"MLREC_PROFILE={self.profile!r} is not a profile", f"set it to one of {', '.join(PROFILES)}"
            )

    # -- the nodes of each tier (one each in the single profile) ---------------------------------------
    def nodes(self, tier: str) -> int:
        """How many nodes ``tier`` (elasticsearch, feast, triton) has in this profile."""
        return CLUSTER_NODES[tier] if self.profile == "cluster" else 1

    def es_node_ports(self, node: int) -> tuple[int, int]:
        """(HTTP, transport) port of Elasticsearch node ``node`` (0-based) of the cluster profile."""
        return self.es_port + node * ES_NODE_PORT_STEP, self.es_transport_port + node * ES_NODE_PORT_STEP

    def feast_node_port(self, node: int) -> int:
        return self.feast_port + node * FEAST_NODE_PORT_STEP

    def triton_node_ports(self, node: int) -> dict[str, int]:
        step = node * TRITON_NODE_PORT_STEP
        return {
            "http": self.triton_http_port + step,
            "grpc": self.triton_grpc_port + step,
            "metrics": self.triton_metrics_port + step,
        }

    @property
    def redis_replica_port(self) -> int:
        """The cluster profile's Redis replica (the runtime starts it; the server reads the primary only)."""
        return self.redis_port + REDIS_REPLICA_PORT_OFFSET

    @property
    def es_urls(self) -> list[str]:
        """Every Elasticsearch node the clients use (the first is :attr:`es_url`)."""
        if self.es_hosts:
            return _split(self.es_hosts)
        ports = [self.es_node_ports(i)[0] for i in range(self.nodes("elasticsearch"))]
        return [f"{self.es_scheme}://{self.host}:{port}" for port in ports]

    @property
    def feast_urls(self) -> list[str]:
        """Every feature server ``POST /ml/rec`` reads from."""
        if self.feast_hosts:
            return _split(self.feast_hosts)
        return [f"http://{self.host}:{self.feast_node_port(i)}" for i in range(self.nodes("feast"))]

    @property
    def triton_grpc_urls(self) -> list[str]:
        """Every Triton server's gRPC address (each one serves the model)."""
        if self.triton_hosts:
            return _split(self.triton_hosts)
        return [f"{self.host}:{self.triton_node_ports(i)['grpc']}" for i in range(self.nodes("triton"))]

    @property
    def es_url(self) -> str:
        return self.es_urls[0]

    @property
    def server_url(self) -> str:
        return f"http://{self.host}:{self.server_port}"

    @property
    def feast_url(self) -> str:
        return self.feast_urls[0]

    @property
    def feast_push_url(self) -> str:
        if self.feast_push_host:
            return self.feast_push_host
        return f"http://{self.host}:{self.feast_push_port}" if self.feast_push_port else self.feast_url

    @property
    def triton_grpc_url(self) -> str:
        return self.triton_grpc_urls[0]

    @property
    def triton_http_url(self) -> str:
        return f"http://{self.host}:{self.triton_http_port}"


def _split(hosts: str) -> list[str]:
    """``a, b,c`` -> [a, b, c] (a comma-separated host list from the environment)."""
    return [h.strip() for h in hosts.split(",") if h.strip()]
