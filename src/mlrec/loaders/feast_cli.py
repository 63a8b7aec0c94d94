"""The feast CLI (``apply``, ``materialize-incremental``) run natively or inside the compose ``feast`` service.

Why a CLI and not the SDK: ``feast==0.67.0`` pins ``pandas<3`` and ``prometheus_client<0.25``, ours
are newer, so feast can never be imported in the project's venv. It runs where it is installed:

- ``native``: ``<runtime_dir>/venvs/feast/bin/feast``, the venv ``make services-up`` installs
  (``mlrec_runtime``; its path is computed here without importing the runtime);
- ``docker``: ``docker compose exec -T feast feast ...`` from the repository root, in the container
  ``docker compose up -d`` started, which mounts the feature repository at ``/feature_repo`` and
  the data dir at ``/data`` and sets ``MLREC_DATA_DIR=/data`` (``docker-compose.yml``);
- ``auto`` (default): native when that binary exists, else docker when a compose client is found.

Every path feast touches (registry, SQLite online store, the parquet the feature views read) is
``${MLREC_DATA_DIR}/online/feast/...`` in ``feature_store*.yaml`` and ``features.py``, so both
modes read and write the same files: the host's data dir is the container's ``/data``. The mode
comes from ``Settings.feast_cli`` (``MLREC_FEAST_CLI``), the online store from
``Settings.feast_online_store`` (``MLREC_FEAST_ONLINE_STORE``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from mlrec.core.errors import MlrecError
from mlrec.core.paths import REPO_ROOT, Paths
from mlrec.core.settings import FEAST_CLI_MODES, Settings

FEAST_VERSION = "0.67.0"
FEATURE_REPO = REPO_ROOT / "offline_to_online" / "rank" / "feature_repo"
ONLINE_STORES = {"sqlite": "feature_store.yaml", "redis": "feature_store.redis.yaml"}
# The feature server re-reads the registry this often (`feast serve --registry_ttl_sec`, native and
# compose alike): a loader's `apply` is served after at most about that long, without a restart.
REGISTRY_TTL_S = 5
CLI_TIMEOUT_S = 600.0
COMPOSE_SERVICE = "feast"  # the service name in docker-compose.yml
CONTAINER_REPO = PurePosixPath("/feature_repo")  # where docker-compose.yml mounts FEATURE_REPO
CONTAINER_DATA_DIR = PurePosixPath("/data")  # where docker-compose.yml mounts the data dir

NATIVE_FIX = "`make services-up` (installs feast natively under .runtime/)"
DOCKER_FIX = "`MLREC_FEAST_CLI=docker` in .env with `docker compose up -d` (see docs/docker.md)"


class FeastCliError(MlrecError):
    """Feast cannot be run as configured (not installed, no compose client, a setting it cannot use)."""


class FeastCommandError(FeastCliError):
    """A feast CLI command exited non-zero; the message holds the command and feast's own output."""


@dataclass(frozen=True)
class FeastCommand:
    """One feast invocation: what to run, where, and the variables added to the environment."""

    mode: str  # "native" | "docker"
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return shlex.join(self.argv)


def feast_venv(settings: Settings) -> Path:
    """The venv ``mlrec_runtime`` installs feast into (kept here so loaders never import the runtime)."""
    return settings.runtime_dir / "venvs" / "feast"


def feast_bin(settings: Settings) -> Path:
    return feast_venv(settings) / "bin" / "feast"


def online_store_kind(settings: Settings) -> str:
    """``sqlite`` (default) or ``redis``, validated: the name of the online store feast writes and serves."""
    kind = settings.feast_online_store or "sqlite"
    if kind not in ONLINE_STORES:
        raise FeastCliError(
            f"MLREC_FEAST_ONLINE_STORE={kind!r} is not an online store we configure",
            f"set it to one of {sorted(ONLINE_STORES)} (in the environment or .env)",
        )
    return kind


def feature_store_yaml(repo_dir: Path, settings: Settings) -> Path:
    """The yaml for the selected online store inside ``repo_dir``."""
    path = repo_dir / ONLINE_STORES[online_store_kind(settings)]
    if not path.is_file():
        raise FeastCliError(f"{path} is missing", f"a feast repository needs it: copy {FEATURE_REPO / path.name}")
    return path


def feast_env(settings: Settings, paths: Paths) -> dict[str, str]:
    """The variables ``feature_store*.yaml`` and ``features.py`` refer to (native runs), plus quiet telemetry.

    The compose service sets the same names for the container (``MLREC_DATA_DIR=/data``,
    ``MLREC_HOST=redis``), so a docker command adds none of its own.
    """
    return {
        "MLREC_DATA_DIR": str(paths.root),
        "MLREC_HOST": settings.host,
        "MLREC_REDIS_PORT": str(settings.redis_port),
        "FEAST_USAGE": "False",
    }


def expand_store_yaml(path: Path, env: Mapping[str, str]) -> dict:
    """``path`` parsed after substituting its ``${VAR}`` placeholders from ``env``, as feast does."""
    text = path.read_text()
    for key, value in env.items():
        text = text.replace("${" + key + "}", value)
    return yaml.safe_load(text)


def compose_cli() -> list[str] | None:
    """``docker compose`` (the v2 plugin) or the legacy ``docker-compose``; None when neither is installed."""
    docker = shutil.which("docker")
    if docker:
        try:
            probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            probe = None
        if probe is not None and probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def resolve_mode(settings: Settings) -> str:
    """``native`` or ``docker`` for ``Settings.feast_cli``; ``auto`` prefers an installed native feast."""
    mode = settings.feast_cli or "auto"
    if mode not in FEAST_CLI_MODES:
        raise FeastCliError(
            f"MLREC_FEAST_CLI={mode!r} is not a way to run feast", f"set it to one of {list(FEAST_CLI_MODES)}"
        )
    if mode != "auto":
        return mode
    if feast_bin(settings).exists():
        return "native"
    if compose_cli() is not None:
        return "docker"
    raise FeastCliError(
        f"no feast to run `feast apply` with: {feast_bin(settings)} is missing and no `docker compose` "
        "(or `docker-compose`) client is on PATH",
        f"either run {NATIVE_FIX}, or install Docker with Compose and use {DOCKER_FIX}",
    )


def _data_dir_owner(data_dir: Path) -> str:
    """``uid:gid`` of the data dir: the container writes as its owner, so the host can rewrite every file."""
    probe = data_dir
    while not probe.exists() and probe != probe.parent:  # not created yet: it will inherit its parent's
        probe = probe.parent
    st = probe.stat()
    return f"{st.st_uid}:{st.st_gid}"


def _check_docker_layout(repo_dir: Path, settings: Settings, paths: Paths) -> None:
    """The container sees only what compose mounts: the project's feature repo and the data dir of Settings."""
    if repo_dir.resolve() != FEATURE_REPO.resolve():
        raise FeastCliError(
            f"feast repository {repo_dir} is not mounted in the compose feast service (only {FEATURE_REPO} is)",
            "use MLREC_FEAST_CLI=native for another repository",
        )
    if paths.root.resolve() != settings.data_dir.resolve():
        raise FeastCliError(
            f"data dir {paths.root} is not the one docker compose mounts at {CONTAINER_DATA_DIR} "
            f"({settings.data_dir}, from MLREC_DATA_DIR)",
            "set MLREC_DATA_DIR to the same absolute path for `docker compose up` and the loaders, "
            "or use MLREC_FEAST_CLI=native",
        )


def feast_command(
    args: Sequence[str],
    repo_dir: Path = FEATURE_REPO,
    settings: Settings | None = None,
    paths: Paths | None = None,
    mode: str | None = None,
) -> FeastCommand:
    """The command that runs ``feast <args>`` on ``repo_dir`` in ``mode`` (default: from ``settings``)."""
    settings = settings or Settings.from_env()
    paths = paths or Paths.from_env(settings)
    mode = mode or resolve_mode(settings)
    yaml_name = feature_store_yaml(repo_dir, settings).name
    if mode == "native":
        binary = feast_bin(settings)
        if not binary.exists():
            raise FeastCliError(f"{binary} is missing (MLREC_FEAST_CLI=native)", f"run {NATIVE_FIX}; or {DOCKER_FIX}")
        argv = [str(binary), "-c", str(repo_dir), "-f", str(repo_dir / yaml_name), *args]
        return FeastCommand("native", argv, cwd=repo_dir, env=feast_env(settings, paths))
    if mode != "docker":
        raise FeastCliError(f"feast mode {mode!r} is not native or docker", "set MLREC_FEAST_CLI to native or docker")
    compose = compose_cli()
    if compose is None:
        raise FeastCliError(
            "MLREC_FEAST_CLI=docker but neither `docker compose` nor `docker-compose` is on PATH",
            f"install Docker with the Compose plugin, or run {NATIVE_FIX} and set MLREC_FEAST_CLI=native",
        )
    _check_docker_layout(repo_dir, settings, paths)
    argv = [
        *compose,
        "exec",
        "-T",  # no TTY: the output is captured
        "--user",
        _data_dir_owner(paths.root),
        COMPOSE_SERVICE,
        "feast",
        "-c",
        str(CONTAINER_REPO),
        "-f",
        str(CONTAINER_REPO / yaml_name),
        *args,
    ]
    return FeastCommand("docker", argv, cwd=REPO_ROOT)  # compose finds docker-compose.yml and .env here


def rerun_hint(mode: str) -> str:
    """What to do when the feature server keeps serving an old registry or is not reachable."""
    if mode == "docker":
        return (
            "check `docker compose ps feast`, then `docker compose restart feast` (it re-reads the registry) "
            "and run this loader again; `docker compose up` and the loaders must agree on MLREC_FEAST_ONLINE_STORE"
        )
    return (
        "restart the native feature server (`python -m mlrec_runtime down feast && python -m mlrec_runtime up feast`) "
        "and run this loader again"
    )


def run_feast(
    args: Sequence[str],
    repo_dir: Path = FEATURE_REPO,
    settings: Settings | None = None,
    paths: Paths | None = None,
    timeout_s: float = CLI_TIMEOUT_S,
    mode: str | None = None,
) -> subprocess.CompletedProcess:
    """Run ``feast <args>`` (e.g. ``["apply"]``, ``["materialize-incremental", ts]``) on ``repo_dir``.

    Raises :class:`FeastCommandError` with the command's output when it fails, so a loader's error
    shows feast's own message (a definitions error in ``features.py``, a compose service not running).
    """
    settings = settings or Settings.from_env()
    paths = paths or Paths.from_env(settings)
    paths.feast_dir.mkdir(parents=True, exist_ok=True)  # on the host, so its owner is the data dir's
    command = feast_command(args, repo_dir, settings, paths, mode)
    fix = "feast's own output is above (usually a definitions error in features.py)"
    if command.mode == "docker":
        fix += "; if the compose service is not running: `docker compose up -d`, then `docker compose ps feast`"
    try:
        proc = subprocess.run(
            command.argv,
            env={**os.environ, **command.env},
            cwd=command.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as exc:
        raise FeastCommandError(f"`{command}` did not finish in {timeout_s:.0f} s", fix) from exc
    if proc.returncode != 0:
        raise FeastCommandError(f"`{command}` exited with {proc.returncode}:\n{proc.stdout[-4000:]}", fix)
    return proc
