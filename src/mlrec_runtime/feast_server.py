"""Feast: ``feast==0.67.0`` in its own venv and the feature server over HTTP.

Why its own venv: feast wants numpy>=2 while the Triton wheel needs numpy<2, and neither should
dictate the project's pins (feast also pins pandas<3, so the project can never import it). The
feature repository is ``offline_to_online/rank/feature_repo/``; how feast commands are built and
run (this venv's binary, or the compose service) lives in the library, :mod:`mlrec.loaders.feast_cli`,
which the loaders use without importing this runtime. The runtime only installs the venv and
runs ``feast serve``, which re-reads the registry every :data:`REGISTRY_TTL_S` seconds, so a
loader's ``apply`` is served after at most that long without a restart.
"""

from __future__ import annotations

from pathlib import Path

from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.loaders.feast_cli import (
    CLI_TIMEOUT_S,
    FEAST_VERSION,
    FEATURE_REPO,
    ONLINE_STORES,
    REGISTRY_TTL_S,
    FeastCliError,
    FeastCommandError,
    expand_store_yaml,
    feast_bin,
    feast_env,
    feast_venv,
    feature_store_yaml,
    run_feast,
)
from mlrec_runtime.base import Service, ensure_venv, http_get_json, venv_ready
from mlrec_runtime.runtime import ProcessSpec, StartError

__all__ = [
    "CLI_TIMEOUT_S",
    "FEAST_REQUIREMENTS",
    "FEAST_VERSION",
    "FEATURE_REPO",
    "ONLINE_STORES",
    "REGISTRY_TTL_S",
    "FeastCommandError",
    "FeastPushServer",
    "FeastServer",
    "registry_path",
    "run_feast",
]

FEAST_REQUIREMENTS = [f"feast[redis]=={FEAST_VERSION}"]
# `feast serve` runs gunicorn with max_requests=1000 by default: every ~1000 requests its worker
# exits and a new one boots (seconds of a full core importing feast, and with one worker nothing
# answers meanwhile: measured 0.5-1.4 s p99 spikes under load). 0 turns the recycling off.
MAX_REQUESTS = 0
WORKERS = 1


def registry_path(repo_dir: Path, settings: Settings, paths: Paths) -> Path:
    """Where the yaml puts the registry, with its ``${VAR}`` placeholders expanded as feast does."""
    registry = expand_store_yaml(feature_store_yaml(repo_dir, settings), feast_env(settings, paths))["registry"]
    path = Path(registry["path"] if isinstance(registry, dict) else registry)
    return path if path.is_absolute() else repo_dir / path


class FeastServer(Service):
    """``feast serve`` for one feature repository (the project's, or a test's temp repo)."""

    name = "feast"
    start_timeout_s = 90.0
    nice = 0

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
        try:  # the runtime serves from its own venv, whatever MLREC_FEAST_CLI says for loaders
            if not registry_path(self.repo_dir, self.settings, self.paths).is_file():
                run_feast(["apply"], self.repo_dir, self.settings, self.paths, mode="native")
        except FeastCliError as exc:
            raise StartError(f"{self.name}: {exc}") from exc

    def process(self) -> ProcessSpec:
        argv = [
            str(feast_bin(self.settings)),
            "-c",
            str(self.repo_dir),
            "-f",
            str(feature_store_yaml(self.repo_dir, self.settings)),
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
            self.name,
            argv,
            self.log_path,
            self.pid_path,
            env=feast_env(self.settings, self.paths),
            cwd=self.repo_dir,
            nice=self.nice,
        )

    def healthy(self) -> bool:
        return http_get_json(f"http://{self.settings.host}:{self.port}/health") is not None

    def version(self) -> str | None:
        return FEAST_VERSION if self.healthy() else None


class FeastPushServer(FeastServer):
    """The feature server the event worker pushes users' rows to (``MLREC_FEAST_PUSH_PORT``).

    The same repository and online store as :class:`FeastServer`, in a process of its own at a lower
    CPU priority (nice 19, as the event worker): a push of hundreds of rows takes the feature server
    hundreds of milliseconds of CPU, and in the server ``/ml/rec`` reads from it raised ``/ml/rec``'s
    p99 by 178 % at 500 events/s against 84 % here at nice 10 and 55 % at nice 19 (``make bench-events``)."""

    name = "feast-push"
    nice = 19

    def __init__(self, settings: Settings, paths: Paths | None = None) -> None:
        super().__init__(settings, paths, port=settings.feast_push_port, name=self.name)
