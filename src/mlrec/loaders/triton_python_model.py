"""Generic Triton Python-backend model: runs ``model.onnx`` (beside this file) with onnxruntime.

Copied as ``<model>/<version>/model.py`` into the native model repository by
:func:`mlrec.loaders.triton_repo.write_model_repositories`; the Docker repository serves the same
``model.onnx`` with the ``onnxruntime_onnx`` platform. Tensor names come from ``config.pbtxt``, so
this file never changes with the model. It runs only inside Triton's Python backend (the
``triton_python_backend_utils`` module exists nowhere else) and nothing in ``mlrec`` imports it.

Batching: dynamic batching hands :meth:`TritonPythonModel.execute` several requests at once; they
are scored in ONE onnxruntime call and the result is split back per request.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# The backend stub embeds Python in isolated mode, which ignores PYTHONPATH; the native server
# sets it to the venv holding numpy and onnxruntime, so honour it here before importing them.
for _path in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    if _path and _path not in sys.path:
        sys.path.append(_path)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


class TritonPythonModel:
    """The class name and method signatures are the Python backend's contract."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        self.input_name: str = config["input"][0]["name"]
        self.output_name: str = config["output"][0]["name"]
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def execute(self, requests: list[Any]) -> list[Any]:
        inputs = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests]
        sizes = [len(x) for x in inputs]
        batch = np.concatenate(inputs).astype(np.float32, copy=False)
        scores = self.session.run([self.output_name], {self.input_name: batch})[0].astype(np.float32)
        responses = []
        for part in np.split(scores, np.cumsum(sizes)[:-1]):
            tensor = pb_utils.Tensor(self.output_name, np.ascontiguousarray(part))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
        return responses
