"""Triton model repositories for one ONNX model: the Docker flavour and the native flavour.

Why two: the official Triton image serves ONNX with its ``onnxruntime_onnx`` platform, while the
native server (the ``tritonserver`` inside the ``nvidia-pytriton`` wheel, see
``mlrec_runtime.triton_server``) has only the Python backend. So from ONE ``model.onnx`` we
write both: the same model name, tensor names, shapes, ``max_batch_size`` and dynamic batching,
and in the native one a generic ``model.py`` (:mod:`mlrec.loaders.triton_python_model`, copied
byte for byte) that runs the ONNX file with onnxruntime. Clients cannot tell them apart.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import onnx

from mlrec.core import io
from mlrec.core.contracts import TRITON_INPUT, TRITON_OUTPUT
from mlrec.core.errors import MlrecError
from mlrec.core.paths import TRITON_SCRIPT

DOCKER_REPO = "model_repository"
NATIVE_REPO = "model_repository_native"
DEFAULT_MAX_BATCH_SIZE = 1024
DEFAULT_QUEUE_DELAY_US = 200


class ModelSignatureError(MlrecError, ValueError):
    """The ONNX file's inputs/outputs do not match the names or sizes we are asked to serve."""


@dataclass(frozen=True)
class ModelSignature:
    """What both ``config.pbtxt`` flavours declare (one FP32 input vector, one FP32 output)."""

    model_name: str
    n_features: int
    input_name: str = TRITON_INPUT
    output_name: str = TRITON_OUTPUT
    output_dim: int = 1
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US


# The Python-backend model (a real module of this package, copied as model.py; see its docstring).
NATIVE_MODEL_FILE = Path(__file__).with_name("triton_python_model.py")


def check_onnx_signature(onnx_path: Path, sig: ModelSignature) -> None:
    """Fail early, naming the file, if the ONNX graph does not have the tensors we will declare."""
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    inputs = {i.name: i for i in graph.input if i.name not in initializers}
    outputs = {o.name: o for o in graph.output}
    if sig.input_name not in inputs:
        raise ModelSignatureError(
            f"{onnx_path}: no input named {sig.input_name!r} (inputs: {sorted(inputs)})",
            "export with input_names=[...] or pass input_name=",
        )
    if sig.output_name not in outputs:
        raise ModelSignatureError(
            f"{onnx_path}: no output named {sig.output_name!r} (outputs: {sorted(outputs)})",
            "export with output_names=[...] or pass output_name=",
        )
    dims = inputs[sig.input_name].type.tensor_type.shape.dim
    last = dims[-1].dim_value if dims else 0
    if last and last != sig.n_features:
        raise ModelSignatureError(
            f"{onnx_path}: input {sig.input_name!r} has {last} features, expected n_features={sig.n_features}",
            "check the feature meta the model was trained on",
        )


def config_pbtxt(sig: ModelSignature, backend_line: str) -> str:
    """``config.pbtxt`` text; ``backend_line`` is the only line that differs between flavours."""

    def tensor(kind: str, name: str, dim: int) -> str:
        return f'{kind} [\n  {{\n    name: "{name}"\n    data_type: TYPE_FP32\n    dims: [ {dim} ]\n  }}\n]\n'

    return (
        f'name: "{sig.model_name}"\n'
        f"{backend_line}\n"
        f"max_batch_size: {sig.max_batch_size}\n"
        + tensor("input", sig.input_name, sig.n_features)
        + tensor("output", sig.output_name, sig.output_dim)
        + f"dynamic_batching {{\n  max_queue_delay_microseconds: {sig.queue_delay_us}\n}}\n"
        "instance_group [\n  {\n    count: 1\n    kind: KIND_CPU\n  }\n]\n"
    )


def _write_model(model_dir: Path, config: str, version: int, files: dict[str, Path]) -> None:
    """Write ``<version>/`` (copies of ``files``, replaced whole) and then ``config.pbtxt``."""
    with io.atomic_path(model_dir / str(version), directory=True) as tmp:
        for name, source in files.items():
            shutil.copyfile(source, tmp / name)
    io.write_text(model_dir / "config.pbtxt", config)


def write_model_repositories(
    onnx_path: Path,
    out_root: Path,
    model_name: str,
    n_features: int,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    input_name: str = TRITON_INPUT,
    output_name: str = TRITON_OUTPUT,
    version: int = 1,
) -> tuple[Path, Path]:
    """Write ``out_root/model_repository`` (Docker) and ``out_root/model_repository_native``.

    Returns ``(docker_repo_dir, native_repo_dir)``; each holds ``<model_name>/config.pbtxt`` and
    ``<model_name>/<version>/``. Load the new version afterwards with the Triton client's
    ``load_model(model_name)`` (the servers run in explicit model-control mode).
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise io.ArtifactError(
            f"{onnx_path}: no ONNX model there", f"export the ranker first: `python {TRITON_SCRIPT}`"
        )
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
        {"model.onnx": onnx_path, "model.py": NATIVE_MODEL_FILE},
    )
    return docker_repo, native_repo
