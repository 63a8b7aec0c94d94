"""The ranker -> ONNX -> Triton model repositories -> (re)load (:data:`~mlrec.core.paths.TRITON_SCRIPT`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlrec.core import io
from mlrec.core.contracts import TRITON_INPUT
from mlrec.core.log import summary, timed
from mlrec.core.paths import FEATURES_SCRIPT, TRITON_SCRIPT, Paths, step_name
from mlrec.core.settings import Settings
from mlrec.loaders import LoadCheckError
from mlrec.models.export import export_onnx
from mlrec.online.triton_ranker import TritonRanker


def load_triton(paths: Paths, settings: Settings, repo_root: Path | None = None) -> dict:
    """PyTorch -> ONNX -> both model repositories -> (re)load in the running Triton.

    ``repo_root`` is the folder holding the repositories the running Triton serves (default:
    ``paths.triton_dir``, where ``make services-up`` points it); tests pass the serving one while
    their artifacts live in a temp data dir.
    """
    import onnxruntime as ort
    import torch

    from mlrec.loaders.triton_repo import write_model_repositories

    with timed() as t:
        onnx_path, meta, wrapped = export_onnx(paths)
        docker_repo, native_repo = write_model_repositories(
            onnx_path, repo_root or paths.triton_dir, settings.triton_model, meta.n_features
        )
        rows = io.read_parquet(paths.rank_examples, FEATURES_SCRIPT, columns=meta.names).iloc[-2000:]
        x = rows.to_numpy(np.float32, copy=True)
        onnx_scores = ort.InferenceSession(str(onnx_path)).run(None, {TRITON_INPUT: x})[0].reshape(-1)
        with torch.no_grad():
            torch_scores = wrapped(torch.from_numpy(x)).numpy().reshape(-1)
        onnx_diff = float(np.abs(onnx_scores - torch_scores).max())
        for url in settings.triton_grpc_urls:  # every server of the tier serves the same model
            ranker = TritonRanker(url, settings.triton_model, timeout_s=10.0)
            try:
                ranker.load()
                ready = ranker.ready()
            finally:
                ranker.close()
            if not ready:
                raise LoadCheckError(
                    f"triton: model {settings.triton_model} not ready at {url} after load",
                    "see the Triton log (`make services-status` names it) for why the model failed to load",
                )
    print(
        f"triton check: ONNX vs PyTorch max |diff| {onnx_diff:.2e} on {len(x)} candidate rows; "
        f"model {settings.triton_model} ready at {', '.join(settings.triton_grpc_urls)}"
    )
    fields = dict(
        onnx=str(onnx_path),
        docker_repo=str(docker_repo),
        native_repo=str(native_repo),
        onnx_max_diff=onnx_diff,
        servers=len(settings.triton_grpc_urls),
        seconds=t["seconds"],
    )
    summary(step_name(TRITON_SCRIPT), paths.metrics, **fields)
    return fields
