"""Triton model repositories for one ONNX model: the Docker flavour and the native flavour.

Why two: the official Triton image serves ONNX with its ``onnxruntime_onnx`` platform, while the
native server (the ``tritonserver`` inside the ``nvidia-pytriton`` wheel, see
``mlrec_runtime.triton_server``) has only the Python backend. So from ONE ``model.onnx`` we
write both: the same model name, tensor names, shapes, ``max_batch_size`` and dynamic batching,
and in the native one a generic ``model.py`` that runs the ONNX file with onnxruntime. Clients
cannot tell them apart.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import onnx

DOCKER_REPO = "model_repository"
NATIVE_REPO = "model_repository_native"
DEFAULT_MAX_BATCH_SIZE = 1024
DEFAULT_QUEUE_DELAY_US = 200


class ModelSignatureError(ValueError):
    """The ONNX file's inputs/outputs do not match the names or sizes we are asked to serve."""


@dataclass(frozen=True)
class ModelSignature:
    """What both ``config.pbtxt`` flavours declare (one FP32 input vector, one FP32 output)."""

    model_name: str
    n_features: int
    input_name: str = "ml_input"
    output_name: str = "ml_output"
    output_dim: int = 1
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US


# The Python-backend model: reads tensor names from its config, batches all requests Triton hands
# it into one onnxruntime call (dynamic batching groups them), and splits the result back.
NATIVE_MODEL_PY = '''"""Generic Triton Python-backend model: runs model.onnx (beside this file) with onnxruntime.

Written by mlrec.loaders.triton_repo; the Docker repository serves the same model.onnx with the
onnxruntime_onnx platform. Tensor names come from config.pbtxt, so this file never changes.
"""
import json
import os
import sys

# The backend stub embeds Python in isolated mode, which ignores PYTHONPATH; the native server
# sets it to the venv holding numpy and onnxruntime, so honour it here before importing them.
for _path in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    if _path and _path not in sys.path:
        sys.path.append(_path)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def execute(self, requests):
        inputs = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests]
        sizes = [len(x) for x in inputs]
        batch = np.concatenate(inputs).astype(np.float32, copy=False)
        scores = self.session.run([self.output_name], {self.input_name: batch})[0].astype(np.float32)
        responses = []
        for part in np.split(scores, np.cumsum(sizes)[:-1]):
            tensor = pb_utils.Tensor(self.output_name, np.ascontiguousarray(part))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
        return responses
'''


def check_onnx_signature(onnx_path: Path, sig: ModelSignature) -> None:
    """Fail early, naming the file, if the ONNX graph does not have the tensors we will declare."""
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    inputs = {i.name: i for i in graph.input if i.name not in initializers}
    outputs = {o.name: o for o in graph.output}
    if sig.input_name not in inputs:
        raise ModelSignatureError(
            f"{onnx_path}: no input named {sig.input_name!r} (inputs: {sorted(inputs)}); "
            "export with input_names=[...] or pass input_name="
        )
    if sig.output_name not in outputs:
        raise ModelSignatureError(
            f"{onnx_path}: no output named {sig.output_name!r} (outputs: {sorted(outputs)}); "
            "export with output_names=[...] or pass output_name="
        )
    dims = inputs[sig.input_name].type.tensor_type.shape.dim
    last = dims[-1].dim_value if dims else 0
    if last and last != sig.n_features:
        raise ModelSignatureError(
            f"{onnx_path}: input {sig.input_name!r} has {last} features, expected "
            f"n_features={sig.n_features} (check the feature meta the model was trained on)"
        )


def config_pbtxt(sig: ModelSignature, backend_line: str) -> str:
    """``config.pbtxt`` text; ``backend_line`` is the only line that differs between flavours."""
    return (
        f'name: "{sig.model_name}"\n'
        f"{backend_line}\n"
        f"max_batch_size: {sig.max_batch_size}\n"
        f'input [\n  {{\n    name: "{sig.input_name}"\n    data_type: TYPE_FP32\n    dims: [ {sig.n_features} ]\n  }}\n]\n'
        f'output [\n  {{\n    name: "{sig.output_name}"\n    data_type: TYPE_FP32\n    dims: [ {sig.output_dim} ]\n  }}\n]\n'
        f"dynamic_batching {{\n  max_queue_delay_microseconds: {sig.queue_delay_us}\n}}\n"
        "instance_group [\n  {\n    count: 1\n    kind: KIND_CPU\n  }\n]\n"
    )


def _write_model(model_dir: Path, config: str, version: int, files: dict[str, Path | str]) -> None:
    """Write ``config.pbtxt`` and ``<version>/`` files; the version folder is replaced whole."""
    version_dir = model_dir / str(version)
    tmp = model_dir / f".{version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, Path):
            shutil.copyfile(content, tmp / name)
        else:
            (tmp / name).write_text(content)
    shutil.rmtree(version_dir, ignore_errors=True)
    tmp.rename(version_dir)
    (model_dir / "config.pbtxt").write_text(config)


def write_model_repositories(
    onnx_path: Path,
    out_root: Path,
    model_name: str,
    n_features: int,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    input_name: str = "ml_input",
    output_name: str = "ml_output",
    version: int = 1,
) -> tuple[Path, Path]:
    """Write ``out_root/model_repository`` (Docker) and ``out_root/model_repository_native``.

    Returns ``(docker_repo_dir, native_repo_dir)``; each holds ``<model_name>/config.pbtxt`` and
    ``<model_name>/<version>/``. Load the new version afterwards with the Triton client's
    ``load_model(model_name)`` (the servers run in explicit model-control mode).
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"{onnx_path}: no ONNX model there; export the ranker first")
    sig = ModelSignature(model_name, n_features, input_name, output_name, max_batch_size=max_batch_size)
    check_onnx_signature(onnx_path, sig)
    docker_repo, native_repo = Path(out_root) / DOCKER_REPO, Path(out_root) / NATIVE_REPO
    _write_model(
        docker_repo / model_name, config_pbtxt(sig, 'platform: "onnxruntime_onnx"'), version, {"model.onnx": onnx_path}
    )
    _write_model(
        native_repo / model_name,
        config_pbtxt(sig, 'backend: "python"'),
        version,
        {"model.onnx": onnx_path, "model.py": NATIVE_MODEL_PY},
    )
    return docker_repo, native_repo
