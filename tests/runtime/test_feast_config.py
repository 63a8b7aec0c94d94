"""The feature repository's yaml files and how the runtime (``mlrec_runtime.feast_server``) reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.loaders.feast_cli import FeastCliError, online_store_kind
from mlrec_runtime.feast_server import FEATURE_REPO, ONLINE_STORES, FeastServer, registry_path
from mlrec_runtime.runtime import StartError


@pytest.mark.parametrize("filename", sorted(ONLINE_STORES.values()))
def test_every_key_is_commented_and_paths_use_the_data_dir(filename):
    text = (FEATURE_REPO / filename).read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#"):
            assert lines[i - 1].lstrip().startswith("#"), f"{filename}: no comment above {line.strip()!r}"
    config = yaml.safe_load(text)
    assert config["project"] == "mlrec"
    assert config["registry"]["path"] == "${MLREC_DATA_DIR}/online/feast/registry.db"
    assert config["entity_key_serialization_version"] == 3


def test_online_store_choice():
    assert yaml.safe_load((FEATURE_REPO / "feature_store.yaml").read_text())["online_store"] == {
        "type": "sqlite",
        "path": "${MLREC_DATA_DIR}/online/feast/online_store.db",
    }
    assert yaml.safe_load((FEATURE_REPO / "feature_store.redis.yaml").read_text())["online_store"] == {
        "type": "redis",
        "connection_string": "${MLREC_HOST}:${MLREC_REDIS_PORT}",
    }
    assert online_store_kind(Settings.from_env({}, None)) == "sqlite"
    assert online_store_kind(Settings.from_env({"MLREC_FEAST_ONLINE_STORE": "redis"}, None)) == "redis"
    with pytest.raises(FeastCliError, match="MLREC_FEAST_ONLINE_STORE='mongo'"):
        online_store_kind(Settings(feast_online_store="mongo"))


def test_registry_path_expands_the_data_dir(tmp_path: Path):
    assert registry_path(FEATURE_REPO, Settings(), Paths(tmp_path)) == tmp_path / "online" / "feast" / "registry.db"
    assert registry_path(FEATURE_REPO, Settings(), Paths(tmp_path)).parent == Paths(tmp_path).feast_dir


@pytest.mark.parametrize("store", sorted(ONLINE_STORES))
def test_the_server_serves_the_yaml_of_the_selected_store(tmp_path: Path, store):
    settings = Settings(runtime_dir=tmp_path / "runtime", feast_online_store=store)
    argv = FeastServer(settings, Paths(tmp_path)).process().argv
    assert argv[argv.index("-f") + 1] == str(FEATURE_REPO / ONLINE_STORES[store])


def test_a_misconfigured_repo_stops_the_start_with_a_service_error(tmp_path: Path):
    server = FeastServer(Settings(runtime_dir=tmp_path / "runtime", feast_online_store="mongo"), Paths(tmp_path))
    with pytest.raises(StartError, match="MLREC_FEAST_ONLINE_STORE='mongo'"):
        server.prepare()
