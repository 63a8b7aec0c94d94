"""How the loaders run the feast CLI: natively, or in the compose ``feast`` service, never via the runtime.

There is no Docker engine on the dev machine, so the docker mode is tested up to the engine: the
exact ``docker compose exec`` command (run through a stand-in ``docker`` executable that records
its argv), the mode selection, and that the paths feast reads and writes mean the same files
inside the container as outside. The native mode runs for real in the integration test at the end.
"""

from __future__ import annotations

import dataclasses
import json
import runpy
import shutil
import sqlite3
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlrec.core.contracts import FEAST_USER_SERVICE
from mlrec.core.paths import REPO_ROOT, Paths
from mlrec.core.settings import Settings
from mlrec.loaders import LoadCheckError
from mlrec.loaders.feast_cli import (
    CONTAINER_DATA_DIR,
    CONTAINER_REPO,
    FEATURE_REPO,
    ONLINE_STORES,
    FeastCliError,
    FeastCommandError,
    expand_store_yaml,
    feast_bin,
    feast_command,
    feast_env,
    resolve_mode,
    run_feast,
)
from mlrec.loaders.feast_features import load_feast
from mlrec.online.feast_store import FeastClient

COMPOSE = REPO_ROOT / "docker-compose.yml"

# A stand-in `docker`: answers `compose version` like the Compose plugin (unless NO_PLUGIN), and
# for anything else records its working dir and argv, prints FAKE_OUT and exits with FAKE_RC.
FAKE_DOCKER = """#!/bin/sh
if [ "$1" = compose ] && [ "$2" = version ]; then
    [ -n "$NO_PLUGIN" ] && { echo "docker: unknown command: docker compose" >&2; exit 1; }
    echo "Docker Compose version v2.29.7"; exit 0
fi
{ pwd; for arg in "$@"; do echo "$arg"; done; echo --; } >> "$FAKE_LOG"
[ -n "$FAKE_OUT" ] && echo "$FAKE_OUT"
exit "${FAKE_RC:-0}"
"""


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that is the whole PATH: tests put a stand-in docker / docker-compose there."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "docker.log"))
    for name in ("NO_PLUGIN", "FAKE_OUT", "FAKE_RC"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture
def docker(bin_dir: Path) -> Path:
    return _executable(bin_dir / "docker", FAKE_DOCKER)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings as from an empty environment, with a temp data dir and runtime dir (no feast installed)."""
    data = tmp_path / "data"
    data.mkdir()
    return Settings(data_dir=data, runtime_dir=tmp_path / "runtime")


def _install_native_feast(settings: Settings) -> Path:
    return _executable(feast_bin(settings), "#!/bin/sh\nexit 0\n")


def _calls(log: Path) -> list[list[str]]:
    """[cwd, *argv] of each recorded docker call."""
    lines = log.read_text().splitlines() if log.exists() else []
    calls, current = [], []
    for line in lines:
        if line == "--":
            calls.append(current)
            current = []
        else:
            current.append(line)
    return calls


def _owner(path: Path) -> str:
    st = path.stat()
    return f"{st.st_uid}:{st.st_gid}"


# -- the command each mode builds ------------------------------------------------------------------


@pytest.mark.parametrize("store", sorted(ONLINE_STORES))
def test_native_runs_the_runtime_venv_binary_with_the_data_dir_in_its_env(settings: Settings, bin_dir, store):
    settings = dataclasses.replace(settings, feast_cli="native", feast_online_store=store)
    binary = _install_native_feast(settings)
    paths = Paths(settings.data_dir)
    cmd = feast_command(["apply"], settings=settings, paths=paths)
    assert cmd.mode == "native"
    assert binary == settings.runtime_dir / "venvs" / "feast" / "bin" / "feast"
    assert cmd.argv == [str(binary), "-c", str(FEATURE_REPO), "-f", str(FEATURE_REPO / ONLINE_STORES[store]), "apply"]
    assert cmd.cwd == FEATURE_REPO
    assert cmd.env == {
        "MLREC_DATA_DIR": str(paths.root),
        "MLREC_HOST": settings.host,
        "MLREC_REDIS_PORT": str(settings.redis_port),
        "FEAST_USAGE": "False",
    }


@pytest.mark.parametrize("store", sorted(ONLINE_STORES))
def test_docker_execs_feast_in_the_compose_service_as_the_data_dir_owner(settings: Settings, docker, store):
    settings = dataclasses.replace(settings, feast_cli="docker", feast_online_store=store)
    cmd = feast_command(["materialize-incremental", "2026-01-01T00:00:00"], settings=settings)
    assert cmd.mode == "docker"
    assert cmd.argv == [
        str(docker),
        "compose",
        "exec",
        "-T",
        "--user",
        _owner(settings.data_dir),
        "feast",
        "feast",
        "-c",
        "/feature_repo",
        "-f",
        f"/feature_repo/{ONLINE_STORES[store]}",
        "materialize-incremental",
        "2026-01-01T00:00:00",
    ]
    assert cmd.cwd == REPO_ROOT  # where compose finds docker-compose.yml and .env, as `docker compose up` did
    assert cmd.env == {}  # the container has its own MLREC_DATA_DIR=/data etc. from docker-compose.yml


def test_docker_falls_back_to_the_legacy_docker_compose(settings: Settings, bin_dir):
    legacy = _executable(bin_dir / "docker-compose", FAKE_DOCKER)
    cmd = feast_command(["apply"], settings=dataclasses.replace(settings, feast_cli="docker"))
    assert cmd.argv[:3] == [str(legacy), "exec", "-T"]


def test_docker_refuses_what_the_container_cannot_see(settings: Settings, docker, tmp_path: Path):
    settings = dataclasses.replace(settings, feast_cli="docker")
    other_data = tmp_path / "other-data"
    with pytest.raises(FeastCliError, match="not the one docker compose mounts") as err:
        feast_command(["apply"], settings=settings, paths=Paths(other_data))
    assert "MLREC_DATA_DIR" in err.value.hint
    other_repo = tmp_path / "repo"
    other_repo.mkdir()
    (other_repo / "feature_store.yaml").write_text((FEATURE_REPO / "feature_store.yaml").read_text())
    with pytest.raises(FeastCliError, match="not mounted in the compose feast service"):
        feast_command(["apply"], other_repo, settings)


def test_explicit_modes_name_the_fix_when_their_tool_is_missing(settings: Settings, bin_dir):
    with pytest.raises(FeastCliError, match="is missing") as native:
        feast_command(["apply"], settings=dataclasses.replace(settings, feast_cli="native"))
    assert "make services-up" in native.value.hint and "MLREC_FEAST_CLI=docker" in native.value.hint
    with pytest.raises(FeastCliError, match="neither `docker compose` nor `docker-compose`") as docker:
        feast_command(["apply"], settings=dataclasses.replace(settings, feast_cli="docker"))
    assert "make services-up" in docker.value.hint


def test_bad_settings_are_user_errors(settings: Settings):
    with pytest.raises(FeastCliError, match="MLREC_FEAST_CLI='podman'"):
        resolve_mode(dataclasses.replace(settings, feast_cli="podman"))
    with pytest.raises(FeastCliError, match="MLREC_FEAST_ONLINE_STORE='mongo'") as err:
        feast_command(["apply"], settings=dataclasses.replace(settings, feast_cli="native", feast_online_store="mongo"))
    assert "redis" in err.value.hint and "sqlite" in err.value.hint


# -- auto: native when installed, else docker, else a clear error ------------------------------------


def test_auto_prefers_an_installed_native_feast(settings: Settings, docker):
    assert resolve_mode(settings) == "docker"
    _install_native_feast(settings)
    assert resolve_mode(settings) == "native"


def test_auto_needs_a_compose_client_not_just_docker(settings: Settings, docker, monkeypatch):
    monkeypatch.setenv("NO_PLUGIN", "1")  # a docker CLI without the Compose plugin (this dev machine)
    with pytest.raises(FeastCliError, match="no feast to run") as err:
        resolve_mode(settings)
    assert "make services-up" in err.value.hint and "docker compose up -d" in err.value.hint


def test_auto_with_nothing_installed_names_both_fixes(settings: Settings, bin_dir):
    with pytest.raises(FeastCliError) as err:
        feast_command(["apply"], settings=settings)
    assert "make services-up" in err.value.hint and "MLREC_FEAST_CLI=docker" in err.value.hint


def test_auto_reads_the_mode_from_the_environment_and_env_file(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("MLREC_FEAST_CLI=docker\n")
    assert Settings.from_env({}, env_file).feast_cli == "docker"
    assert Settings.from_env({"MLREC_FEAST_CLI": "native"}, env_file).feast_cli == "native"
    assert Settings.from_env({}, None).feast_cli == "auto"


# -- running it -----------------------------------------------------------------------------------


def test_run_feast_in_docker_mode_runs_compose_from_the_repo_root(settings: Settings, docker, tmp_path: Path):
    settings = dataclasses.replace(settings, feast_cli="docker")
    proc = run_feast(["apply"], settings=settings, paths=Paths(settings.data_dir))
    assert proc.returncode == 0
    (call,) = _calls(tmp_path / "docker.log")
    assert call[0] == str(REPO_ROOT)
    assert call[1:4] == ["compose", "exec", "-T"] and call[-3:] == ["-f", "/feature_repo/feature_store.yaml", "apply"]
    assert Paths(settings.data_dir).feast_dir.is_dir()  # created on the host, so the host user owns it


def test_run_feast_failure_carries_feasts_output_and_the_compose_fix(settings: Settings, docker, monkeypatch):
    monkeypatch.setenv("FAKE_OUT", 'service "feast" is not running')
    monkeypatch.setenv("FAKE_RC", "1")
    with pytest.raises(FeastCommandError, match='service "feast" is not running') as err:
        run_feast(["apply"], settings=dataclasses.replace(settings, feast_cli="docker"))
    assert "exited with 1" in err.value.message
    assert "docker compose up -d" in err.value.hint


def _feature_tables(paths: Paths, n_users: int = 6, n_items: int = 4) -> None:
    """Tiny user/item feature tables and the feature meta features.py reads."""
    rng = np.random.default_rng(3)
    users = pd.DataFrame({"userid": np.arange(1, n_users + 1), "u_age": rng.random(n_users).astype(np.float32)})
    items = pd.DataFrame({"itemid": np.arange(1, n_items + 1), "i_year": rng.random(n_items).astype(np.float32)})
    paths.user_features.parent.mkdir(parents=True, exist_ok=True)
    users.to_parquet(paths.user_features)
    items.to_parquet(paths.item_features)
    meta = {
        "features": [
            {"name": "userid", "owner": "user", "kind": "sparse_id"},
            {"name": "u_age", "owner": "user", "kind": "dense"},
            {"name": "itemid", "owner": "item", "kind": "sparse_id"},
            {"name": "i_year", "owner": "item", "kind": "dense"},
        ]
    }
    paths.feature_meta.write_text(json.dumps(meta))


def test_load_feast_in_docker_mode_applies_then_materializes_through_compose(
    settings: Settings, docker, tmp_path: Path, free_port: int
):
    """The whole loader in docker mode, up to the engine: both commands go to compose, none to the runtime.

    Nothing answers on the feature server's port, so the served check fails with the docker fix.
    """
    settings = dataclasses.replace(settings, feast_cli="docker", feast_port=free_port)
    paths = Paths(settings.data_dir)
    _feature_tables(paths)
    with pytest.raises(LoadCheckError, match="unreachable") as err:
        load_feast(paths, settings, wait_s=0)
    assert "docker compose restart feast" in err.value.hint
    apply, materialize = _calls(tmp_path / "docker.log")
    assert apply[-1] == "apply"
    assert materialize[-2] == "materialize-incremental"
    assert (paths.feast_dir / "user_features.parquet").is_file()  # what the container's views read at /data/...


def test_the_loader_never_imports_the_native_runtime(settings: Settings, docker):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import mlrec.loaders.feast_features\n"
        "from mlrec.core.settings import Settings\n"
        "from mlrec.loaders.feast_cli import feast_command\n"
        f"s = Settings(data_dir=Path({str(settings.data_dir)!r}), runtime_dir=Path({str(settings.runtime_dir)!r}),"
        " feast_cli='docker')\n"
        "cmd = feast_command(['apply'], settings=s)\n"
        "assert cmd.mode == 'docker', cmd\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlrec_runtime'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- the same files inside and outside the container ----------------------------------------------


@pytest.fixture(scope="module")
def compose_feast() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]["feast"]


def _mounts(service: dict) -> dict[str, str]:
    """container path -> host path (relative ones resolved against the compose project dir)."""
    out = {}
    for spec in service["volumes"]:
        host, container = spec.rsplit(":", 1)
        if host.startswith("${MLREC_DATA_DIR:-"):  # the default compose uses when MLREC_DATA_DIR is unset
            host = host.removeprefix("${MLREC_DATA_DIR:-").removesuffix("}")
        out[container] = str((REPO_ROOT / host).resolve())
    return out


def test_compose_mounts_the_feature_repo_and_the_default_data_dir(compose_feast):
    mounts = _mounts(compose_feast)
    assert mounts[str(CONTAINER_REPO)] == str(FEATURE_REPO)
    assert mounts[str(CONTAINER_DATA_DIR)] == str(Settings.from_env({}, None).data_dir)
    assert compose_feast["environment"]["MLREC_DATA_DIR"] == str(CONTAINER_DATA_DIR)
    script = compose_feast["command"][-1]
    assert script.startswith(f"{CONTAINER_REPO}/") and (FEATURE_REPO / Path(script).name).is_file()


@pytest.mark.parametrize("store", sorted(ONLINE_STORES))
def test_registry_and_online_store_are_the_same_files_inside_and_outside(compose_feast, tmp_path: Path, store):
    settings = Settings(data_dir=tmp_path, feast_online_store=store)
    paths = Paths(tmp_path)
    yaml_file = FEATURE_REPO / ONLINE_STORES[store]
    outside = expand_store_yaml(yaml_file, feast_env(settings, paths))
    inside = expand_store_yaml(yaml_file, {k: str(v) for k, v in compose_feast["environment"].items()})
    registry_out, registry_in = Path(outside["registry"]["path"]), Path(inside["registry"]["path"])
    assert registry_out == paths.feast_dir / "registry.db"
    assert registry_out.relative_to(paths.root) == registry_in.relative_to(CONTAINER_DATA_DIR)
    if store == "sqlite":
        db_out, db_in = Path(outside["online_store"]["path"]), Path(inside["online_store"]["path"])
        assert db_out.parent == paths.feast_dir
        assert db_out.relative_to(paths.root) == db_in.relative_to(CONTAINER_DATA_DIR)
    else:  # the container reaches Redis by its compose service name on the container port
        assert outside["online_store"]["connection_string"] == f"{settings.host}:{settings.redis_port}"
        assert inside["online_store"]["connection_string"] == "redis:6379"


def _run_features_py(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Execute features.py with ``MLREC_DATA_DIR=data_dir``; returns each FileSource's name -> path.

    feast cannot be installed in this venv (it pins pandas<3), so a stand-in module records the
    FileSource arguments; only the paths features.py computes are under test.
    """
    sources: dict[str, str] = {}

    class _Any:
        def __init__(self, *args, **kwargs) -> None:
            self.kwargs = kwargs

    class _FileSource(_Any):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            sources[kwargs["name"]] = kwargs["path"]

    feast = types.ModuleType("feast")
    feast.Entity = feast.FeatureService = feast.FeatureView = feast.Field = feast.PushSource = _Any  # type: ignore[attr-defined]
    feast.FileSource = _FileSource  # type: ignore[attr-defined]
    feast.ValueType = types.SimpleNamespace(INT64="INT64")  # type: ignore[attr-defined]
    feast_types = types.ModuleType("feast.types")
    feast_types.Float32 = "Float32"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "feast", feast)
    monkeypatch.setitem(sys.modules, "feast.types", feast_types)
    monkeypatch.setenv("MLREC_DATA_DIR", str(data_dir))
    runpy.run_path(str(FEATURE_REPO / "features.py"))
    return sources


def test_feature_views_read_the_parquet_export_tables_writes_in_either_mode(tmp_path: Path, monkeypatch):
    """Two data dirs stand for the host's and the container's ``/data``: the sources differ only by that root."""
    host, container = Paths(tmp_path / "host"), Paths(tmp_path / "container")
    for paths in (host, container):
        _feature_tables(paths)
    outside = _run_features_py(host.root, monkeypatch)
    inside = _run_features_py(container.root, monkeypatch)
    assert outside == {
        "ml_user_view_source": str(host.feast_dir / host.user_features.name),
        "ml_item_view_source": str(host.feast_dir / host.item_features.name),
    }
    assert {k: Path(v).relative_to(host.root) for k, v in outside.items()} == {
        k: Path(v).relative_to(container.root) for k, v in inside.items()
    }


# -- native, for real -----------------------------------------------------------------------------


def test_load_feast_native_against_the_running_services(services: Settings, tmp_path: Path, free_port: int):
    """The loader with MLREC_FEAST_CLI=native on a temp data dir, served by a second `feast serve`."""
    from mlrec_runtime import runtime
    from mlrec_runtime.feast_server import FeastServer
    from mlrec_runtime.manager import start_service, wait_service

    paths = Paths(tmp_path / "data")
    _feature_tables(paths)
    settings = dataclasses.replace(services, feast_cli="native", feast_port=free_port, data_dir=paths.root)
    server = FeastServer(settings, paths, repo_dir=FEATURE_REPO, port=free_port, name=f"feast-cli-{free_port}")
    try:
        assert start_service(server)
        wait_service(server)
        fields = load_feast(paths, settings)
        assert fields["feast_cli"] == "native"
        assert (fields["users"], fields["items"]) == (6, 4)
        got = FeastClient(settings.feast_url, timeout_s=5.0).get(FEAST_USER_SERVICE, "userid", np.array([1, 2, 3]))
        want = pd.read_parquet(paths.user_features)["u_age"].to_numpy()[:3]
        np.testing.assert_allclose(got["u_age"], want)
        # two feature servers share the store (reads, the event worker's pushes): readers must never wait
        with sqlite3.connect(paths.feast_dir / "online_store.db") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        runtime.stop(server.pid_path)
        shutil.rmtree(server.dir, ignore_errors=True)
