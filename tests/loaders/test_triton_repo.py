"""mlrec.loaders.triton_repo: one model.onnx -> the Docker (onnxruntime) and native (Python backend) repositories."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mlrec.core.contracts import TRITON_INPUT, TRITON_OUTPUT
from mlrec.core.io import ArtifactError
from mlrec.core.paths import TRITON_SCRIPT
from mlrec.loaders.triton_repo import NATIVE_MODEL_FILE, ModelSignatureError, write_model_repositories


def _onnx(path: Path, n: int, input_name: str = TRITON_INPUT, output_name: str = TRITON_OUTPUT) -> Path:
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
    assert d["name"] == ['"ml_rec"', f'"{TRITON_INPUT}"', f'"{TRITON_OUTPUT}"']
    assert d["max_batch_size"] == ["512"]
    assert d["dims"] == ["[ 59 ]", "[ 1 ]"]
    assert "dynamic_batching" in d_cfg and "dynamic_batching" in n_cfg
    # same bytes of model, the native flavour adds the generic runner
    assert (docker / "ml_rec" / "1" / "model.onnx").read_bytes() == onnx_path.read_bytes()
    assert (native / "ml_rec" / "1" / "model.onnx").read_bytes() == onnx_path.read_bytes()
    assert sorted(p.name for p in (docker / "ml_rec" / "1").iterdir()) == ["model.onnx"]
    # the native runner is the package's own module, copied byte for byte
    package_file = NATIVE_MODEL_FILE.relative_to(Path(__file__).parents[2]).as_posix()
    assert package_file == "src/mlrec/loaders/triton_python_model.py"
    assert (native / "ml_rec" / "1" / "model.py").read_bytes() == NATIVE_MODEL_FILE.read_bytes()
    assert sorted(p.name for p in (native / "ml_rec" / "1").iterdir()) == ["model.onnx", "model.py"]


class _Tensor:
    """What ``triton_python_backend_utils.Tensor`` offers the model: a name and a numpy array."""

    def __init__(self, name: str, array: np.ndarray) -> None:
        self.name, self.array = name, array

    def as_numpy(self) -> np.ndarray:
        return self.array


def _backend_utils() -> types.ModuleType:
    """The few names of Triton's ``triton_python_backend_utils`` the model uses (it exists only inside Triton)."""
    pb = types.ModuleType("triton_python_backend_utils")
    pb.Tensor = _Tensor
    pb.get_input_tensor_by_name = lambda request, name: request[name]
    pb.InferenceResponse = lambda output_tensors: output_tensors
    return pb


def test_native_model_scores_a_dynamic_batch_and_splits_it_back(tmp_path, monkeypatch):
    """The copied model.py, driven the way the Python backend drives it: config from config.pbtxt's names."""
    _, native = write_model_repositories(
        _onnx(tmp_path / "m.onnx", 3, "feats", "prob"), tmp_path / "out", "m", 3, input_name="feats", output_name="prob"
    )
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _backend_utils())
    monkeypatch.setattr(sys, "path", list(sys.path))  # the model appends $PYTHONPATH entries
    spec = importlib.util.spec_from_file_location("triton_model_under_test", native / "m" / "1" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    config = {"input": [{"name": "feats"}], "output": [{"name": "prob"}]}
    model.initialize({"model_config": json.dumps(config), "model_repository": str(native / "m"), "model_version": "1"})
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((1, 3), dtype=np.float32)
    responses = model.execute([{"feats": _Tensor("feats", a)}, {"feats": _Tensor("feats", b)}])
    assert [[t.name for t in r] for r in responses] == [["prob"], ["prob"]]
    np.testing.assert_array_equal(responses[0][0].array, a.sum(axis=1, keepdims=True))  # W is all ones
    np.testing.assert_array_equal(responses[1][0].array, [[3.0]])


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
    with pytest.raises(ArtifactError, match=r"nope\.onnx") as err:
        write_model_repositories(tmp_path / "nope.onnx", tmp_path, "m", 4)
    assert isinstance(err.value, FileNotFoundError) and TRITON_SCRIPT in err.value.hint
