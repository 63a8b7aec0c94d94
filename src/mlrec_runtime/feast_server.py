"""Feast: ``feast==0.67.0`` in its own venv, the feature server over HTTP, and the CLI for loaders.

Why its own venv: feast wants numpy>=2 while the Triton wheel needs numpy<2, and neither should
dictate the project's pins. The feature repository is ``offline_to_online/rank/feature_repo/``;
its ``feature_store.yaml`` points the registry and the SQLite online store under
``$MLREC_DATA_DIR`` (feast expands ``${VAR}`` when it reads the yaml), so every command here runs
with that variable set. ``MLREC_FEAST_ONLINE_STORE=redis`` selects ``feature_store.redis.yaml``
(online store in our Redis) instead.

The server re-reads the registry every :data:`REGISTRY_TTL_S` seconds, so a loader's ``apply``
is served after at most that long without a restart; ``mlrec_runtime.restart(["feast"])``
makes it immediate.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import yaml

from mlrec.core.paths import REPO_ROOT, Paths
from mlrec.core.settings import Settings, read_env_file
from mlrec_runtime.base import Service, ensure_venv, http_get_json, venv_ready
from mlrec_runtime.runtime import ProcessSpec, ServiceError

FEAST_VERSION = "0.67.0"
FEAST_REQUIREMENTS = [f"feast[redis]=={FEAST_VERSION}"]
FEATURE_REPO = REPO_ROOT / "offline_to_online" / "rank" / "feature_repo"
ONLINE_STORES = {"sqlite": "feature_store.yaml", "redis": "feature_store.redis.yaml"}
REGISTRY_TTL_S = 5
# `feast serve` runs gunicorn with max_requests=1000 by default: every ~1000 requests its worker
# exits and a new one boots (seconds of a full core importing feast, and with one worker nothing
# answers meanwhile: measured 0.5-1.4 s p99 spikes under load). 0 turns the recycling off.
MAX_REQUESTS = 0
WORKERS = 1
CLI_TIMEOUT_S = 600.0


class FeastCommandError(ServiceError):
    """A feast CLI command exited non-zero; the message holds the command and its output."""


def feast_venv(settings: Settings) -> Path:
    return settings.runtime_dir / "venvs" / "feast"


def feast_bin(settings: Settings) -> Path:
    return feast_venv(settings) / "bin" / "feast"


def online_store_kind(environ: dict[str, str] | None = None) -> str:
    """``sqlite`` (default) or ``redis`` from ``$MLREC_FEAST_ONLINE_STORE`` (or ``.env``, like Settings)."""
    env = environ if environ is not None else {**read_env_file(), **os.environ}
    kind = env.get("MLREC_FEAST_ONLINE_STORE", "") or "sqlite"
    if kind not in ONLINE_STORES:
        raise ValueError(f"MLREC_FEAST_ONLINE_STORE={kind!r}: expected one of {sorted(ONLINE_STORES)}")
    return kind


def feature_store_yaml(repo_dir: Path) -> Path:
    """The yaml for the selected online store inside ``repo_dir``."""
    path = repo_dir / ONLINE_STORES[online_store_kind()]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: a feast repo needs it (copy {FEATURE_REPO / path.name})")
    return path


def feast_env(settings: Settings, paths: Paths) -> dict[str, str]:
    """The variables ``feature_store.yaml`` refers to, plus quiet telemetry."""
    return {
        "MLREC_DATA_DIR": str(paths.root),
        "MLREC_HOST": settings.host,
        "MLREC_REDIS_PORT": str(settings.redis_port),
        "FEAST_USAGE": "False",
    }


def run_feast(
    args: Sequence[str],
    repo_dir: Path = FEATURE_REPO,
    settings: Settings | None = None,
    paths: Paths | None = None,
    timeout_s: float = CLI_TIMEOUT_S,
) -> subprocess.CompletedProcess:
    """Run ``feast <args>`` (e.g. ``["apply"]``, ``["materialize-incremental", ts]``) on ``repo_dir``.

    Uses the feast venv and the data dir of ``paths``; raises :class:`FeastCommandError` with the
    command's output when it fails, so a loader's error shows feast's own message.
    """
    settings = settings or Settings.from_env()
    paths = paths or Paths.from_env()
    binary = feast_bin(settings)
    if not binary.exists():
        raise FeastCommandError(f"{binary} is missing: run `make services-up` (it installs feast {FEAST_VERSION})")
    paths.feast_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(binary), "-c", str(repo_dir), "-f", str(feature_store_yaml(repo_dir)), *args]
    proc = subprocess.run(
        argv,
        env={**os.environ, **feast_env(settings, paths)},
        cwd=repo_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout_s,
    )
    if proc.returncode != 0:
        raise FeastCommandError(f"`{' '.join(argv)}` exited with {proc.returncode}:\n{proc.stdout[-4000:]}")
    return proc


def registry_path(repo_dir: Path, settings: Settings, paths: Paths) -> Path:
    """Where the yaml puts the registry, with its ``${VAR}`` placeholders expanded as feast does."""
    text = feature_store_yaml(repo_dir).read_text()
    for key, value in feast_env(settings, paths).items():
        text = text.replace("${" + key + "}", value)
    registry = yaml.safe_load(text)["registry"]
    path = Path(registry["path"] if isinstance(registry, dict) else registry)
    return path if path.is_absolute() else repo_dir / path


class FeastServer(Service):
    """``feast serve`` for one feature repository (the project's, or a test's temp repo)."""

    name = "feast"
    start_timeout_s = 90.0

    def __init__(
        self,
        settings: Settings,
        paths: Paths | None = None,
        repo_dir: Path = FEATURE_REPO,
        port: int | None = None,
        name: str = "feast",
    ) -> None:
        super().__init__(settings, paths)
        self.repo_dir = repo_dir
        self._port = port
        self.name = name

    @property
    def port(self) -> int:
        return self._port or self.settings.feast_port

    def is_installed(self) -> bool:
        return venv_ready(feast_venv(self.settings), FEAST_REQUIREMENTS)

    def install(self) -> None:
        ensure_venv("feast", feast_venv(self.settings), FEAST_REQUIREMENTS)

    def prepare(self) -> None:
        """An empty registry is enough to serve: create it with ``apply`` when it does not exist yet."""
        if not registry_path(self.repo_dir, self.settings, self.paths).is_file():
            run_feast(["apply"], self.repo_dir, self.settings, self.paths)

    def process(self) -> ProcessSpec:
        argv = [
            str(feast_bin(self.settings)),
            "-c",
            str(self.repo_dir),
            "-f",
            str(feature_store_yaml(self.repo_dir)),
            "serve",
            "-h",
            self.settings.host,
            "-p",
            str(self.port),
            "--no-access-log",
            "--registry_ttl_sec",
            str(REGISTRY_TTL_S),
            "--workers",
            str(WORKERS),
            "--max-requests",
            str(MAX_REQUESTS),
        ]
        return ProcessSpec(
            self.name, argv, self.log_path, self.pid_path, env=feast_env(self.settings, self.paths), cwd=self.repo_dir
        )

    def healthy(self) -> bool:
        return http_get_json(f"http://{self.settings.host}:{self.port}/health") is not None

    def version(self) -> str | None:
        return FEAST_VERSION if self.healthy() else None
