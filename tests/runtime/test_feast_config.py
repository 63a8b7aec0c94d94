"""The feature repository's yaml files and how mlrec_runtime.feast_server reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec_runtime.feast_server import FEATURE_REPO, ONLINE_STORES, online_store_kind, registry_path


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
    assert online_store_kind({}) == "sqlite"
    assert online_store_kind({"MLREC_FEAST_ONLINE_STORE": "redis"}) == "redis"
    with pytest.raises(ValueError, match="MLREC_FEAST_ONLINE_STORE='mongo'"):
        online_store_kind({"MLREC_FEAST_ONLINE_STORE": "mongo"})


def test_registry_path_expands_the_data_dir(tmp_path: Path):
    assert registry_path(FEATURE_REPO, Settings(), Paths(tmp_path)) == tmp_path / "online" / "feast" / "registry.db"
    assert registry_path(FEATURE_REPO, Settings(), Paths(tmp_path)).parent == Paths(tmp_path).feast_dir
