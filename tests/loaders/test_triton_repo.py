"""mlrec.loaders.triton_repo: one model.onnx -> the Docker (onnxruntime) and native (Python backend) repositories."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mlrec.loaders.triton_repo import ModelSignatureError, write_model_repositories


def _onnx(path: Path, n: int, input_name: str = "ml_input", output_name: str = "ml_output") -> Path:
    graph = helper.make_graph(
        [helper.make_node("MatMul", [input_name, "W"], [output_name])],
        "g",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, n])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [None, 1])],
        initializer=[numpy_helper.from_array(np.ones((n, 1), dtype=np.float32), "W")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _fields(config: str) -> dict[str, list[str]]:
    """The scalar ``key: value`` lines of a config.pbtxt, by key (dims keep their bracket text)."""
    out: dict[str, list[str]] = {}
    for key, value in re.findall(r"^\s*(\w+):\s*(.+?)\s*$", config, flags=re.M):
        out.setdefault(key, []).append(value)
    return out


def test_both_repositories_share_signature_and_differ_only_in_backend(tmp_path):
    onnx_path = _onnx(tmp_path / "model.onnx", 59)
    docker, native = write_model_repositories(onnx_path, tmp_path / "out", "ml_rec", n_features=59, max_batch_size=512)
    assert docker == tmp_path / "out" / "model_repository"
    assert native == tmp_path / "out" / "model_repository_native"
    d_cfg = (docker / "ml_rec" / "config.pbtxt").read_text()
    n_cfg = (native / "ml_rec" / "config.pbtxt").read_text()
    d, n = _fields(d_cfg), _fields(n_cfg)
    assert d["platform"] == ['"onnxruntime_onnx"'] and "backend" not in d
    assert n["backend"] == ['"python"'] and "platform" not in n
    for key in ("name", "max_batch_size", "data_type", "dims", "max_queue_delay_microseconds", "kind"):
        assert d[key] == n[key], key
    assert d["name"] == ['"ml_rec"', '"ml_input"', '"ml_output"']
    assert d["max_batch_size"] == ["512"]
    assert d["dims"] == ["[ 59 ]", "[ 1 ]"]
    assert "dynamic_batching" in d_cfg and "dynamic_batching" in n_cfg
    # same bytes of model, the native flavour adds the generic runner
    assert (docker / "ml_rec" / "1" / "model.onnx").read_bytes() == onnx_path.read_bytes()
    assert (native / "ml_rec" / "1" / "model.onnx").read_bytes() == onnx_path.read_bytes()
    assert sorted(p.name for p in (docker / "ml_rec" / "1").iterdir()) == ["model.onnx"]
    model_py = (native / "ml_rec" / "1" / "model.py").read_text()
    tree = ast.parse(model_py)
    assert any(isinstance(node, ast.ClassDef) and node.name == "TritonPythonModel" for node in tree.body)


def test_new_version_goes_beside_the_old_one(tmp_path):
    out = tmp_path / "out"
    write_model_repositories(_onnx(tmp_path / "a.onnx", 4), out, "m", n_features=4)
    _, native = write_model_repositories(_onnx(tmp_path / "b.onnx", 4), out, "m", n_features=4, version=2)
    assert sorted(p.name for p in (native / "m").iterdir()) == ["1", "2", "config.pbtxt"]
    assert (native / "m" / "2" / "model.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_custom_tensor_names_are_declared(tmp_path):
    onnx_path = _onnx(tmp_path / "m.onnx", 3, "features", "score")
    docker, _ = write_model_repositories(onnx_path, tmp_path / "o", "m", 3, input_name="features", output_name="score")
    assert _fields((docker / "m" / "config.pbtxt").read_text())["name"] == ['"m"', '"features"', '"score"']


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_features": 58}, "has 59 features, expected n_features=58"),
        ({"n_features": 59, "input_name": "x"}, "no input named 'x'"),
        ({"n_features": 59, "output_name": "y"}, "no output named 'y'"),
    ],
)
def test_mismatched_signature_is_a_named_error(tmp_path, kwargs, message):
    onnx_path = _onnx(tmp_path / "model.onnx", 59)
    with pytest.raises(ModelSignatureError, match=re.escape(message)):
        write_model_repositories(onnx_path, tmp_path / "out", "ml_rec", **kwargs)
    assert not (tmp_path / "out").exists()


def test_missing_onnx_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        write_model_repositories(tmp_path / "nope.onnx", tmp_path, "m", 4)
