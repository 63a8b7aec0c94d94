from pathlib import Path

import pytest

from mlrec.core.paths import Paths
from mlrec.core.settings import Settings, read_env_file


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
