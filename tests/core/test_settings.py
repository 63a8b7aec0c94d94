from pathlib import Path

import pytest

from mlrec.core.paths import Paths
from mlrec.core.settings import Settings, SettingsError, read_env_file


def test_defaults_are_the_standard_ports():
    s = Settings.from_env({}, env_file=None)
    assert (s.redis_port, s.es_port, s.feast_port, s.triton_http_port, s.triton_grpc_port) == (
        6379,
        9200,
        6566,
        8000,
        8001,
    )
    assert s.es_password == "" and "es_password" not in repr(s)


def test_environment_overrides_and_types():
    s = Settings.from_env(
        {"MLREC_REDIS_PORT": "7000", "ELASTIC_PASSWORD": "pw", "MLREC_TIMEOUT_S": "0.5"}, env_file=None
    )
    assert s.redis_port == 7000 and s.es_password == "pw" and s.timeout_s == 0.5
    assert s.es_url == "http://127.0.0.1:9200" and s.triton_grpc_url == "127.0.0.1:8001"


def test_bad_value_names_the_variable():
    with pytest.raises(ValueError, match="MLREC_REDIS_PORT"):
        Settings.from_env({"MLREC_REDIS_PORT": "six"}, env_file=None)


def test_env_file_parsing(tmp_path: Path):
    f = tmp_path / ".env"
    f.write_text("# comment\nELASTIC_PASSWORD='s3cret'\n\nMLREC_DATASET=ml-1m\nnot a pair\n")
    assert read_env_file(f) == {"ELASTIC_PASSWORD": "s3cret", "MLREC_DATASET": "ml-1m"}
    assert read_env_file(tmp_path / "missing") == {}
    assert Settings.from_env({}, env_file=f).es_password == "s3cret"
    assert Settings.from_env({"ELASTIC_PASSWORD": "env-wins"}, env_file=f).es_password == "env-wins"


def test_env_file_inline_comments_as_compose_reads_them(tmp_path: Path):
    """An uncommented line of .env.example (``KEY=value   # why``) must parse to the value alone."""
    f = tmp_path / ".env"
    f.write_text("MLREC_FEAST_PUSH_PORT=6567   # the worker's pushes\nELASTIC_PASSWORD='a #b'\nMLREC_HOST=h#1\n")
    assert read_env_file(f) == {"MLREC_FEAST_PUSH_PORT": "6567", "ELASTIC_PASSWORD": "a #b", "MLREC_HOST": "h#1"}
    assert Settings.from_env({}, env_file=f).feast_push_port == 6567


def test_paths_follow_mlrec_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MLREC_DATA_DIR", str(tmp_path))
    p = Paths.from_env()
    assert p.feature_meta == tmp_path / "offline_to_online" / "rank" / "feature_meta.json"
    assert p.raw_dir("ml-100k") == tmp_path / "raw" / "ml-100k"


def test_dataset_logging_and_progress_come_from_settings(tmp_path):
    d = Settings.from_env({}, env_file=None)
    assert (d.dataset, d.log_level, d.progress) == ("ml-100k", "WARNING", True)
    f = tmp_path / ".env"
    f.write_text("MLREC_DATASET=ml-1m\nMLREC_LOG_LEVEL=info\nMLREC_PROGRESS=0\n")
    s = Settings.from_env({}, env_file=f)
    assert (s.dataset, s.log_level, s.progress) == ("ml-1m", "INFO", False)


def test_bad_value_is_a_user_error_with_a_hint():
    from mlrec.core.errors import MlrecError

    with pytest.raises(MlrecError) as err:
        Settings.from_env({"MLREC_PROGRESS": "maybe"}, env_file=None)
    assert "MLREC_PROGRESS='maybe'" in err.value.message and "1/0" in err.value.hint


def test_single_profile_has_one_node_per_tier():
    s = Settings.from_env({}, env_file=None)
    assert s.es_urls == ["http://127.0.0.1:9200"] and s.feast_urls == ["http://127.0.0.1:6566"]
    assert s.triton_grpc_urls == ["127.0.0.1:8001"]
    assert (s.es_url, s.feast_url, s.triton_grpc_url) == (s.es_urls[0], s.feast_urls[0], s.triton_grpc_urls[0])


def test_cluster_profile_ports_follow_the_first_nodes():
    s = Settings.from_env({"MLREC_PROFILE": "cluster", "MLREC_ES_PORT": "9250"}, env_file=None)
    assert s.es_urls == ["http://127.0.0.1:9250", "http://127.0.0.1:9251", "http://127.0.0.1:9252"]
    assert [s.es_node_ports(n)[1] for n in range(3)] == [9300, 9301, 9302]
    assert s.feast_urls == ["http://127.0.0.1:6566", "http://127.0.0.1:6568"]  # 6567 is the push server's
    assert s.feast_push_url == "http://127.0.0.1:6567"
    assert s.triton_grpc_urls == ["127.0.0.1:8001", "127.0.0.1:8011"]
    assert s.triton_node_ports(1) == {"http": 8010, "grpc": 8011, "metrics": 8012}
    assert s.redis_replica_port == 6380


def test_host_lists_win_over_the_profile():
    s = Settings.from_env(
        {
            "MLREC_PROFILE": "cluster",
            "MLREC_ES_HOSTS": "http://elasticsearch:9200, http://es-2:9200,http://es-3:9200",
            "MLREC_FEAST_HOSTS": "http://feast:6566,http://feast-2:6566",
            "MLREC_TRITON_HOSTS": "triton:8001,triton-2:8001",
            "MLREC_FEAST_PUSH_HOST": "http://feast-push:6566",
        },
        env_file=None,
    )
    assert s.es_urls == ["http://elasticsearch:9200", "http://es-2:9200", "http://es-3:9200"]
    assert s.feast_urls == ["http://feast:6566", "http://feast-2:6566"]
    assert s.triton_grpc_urls == ["triton:8001", "triton-2:8001"]
    assert s.feast_push_url == "http://feast-push:6566"


def test_unknown_profile_is_a_named_error():
    with pytest.raises(SettingsError, match="MLREC_PROFILE"):
        Settings.from_env({"MLREC_PROFILE": "mesh"}, env_file=None)
